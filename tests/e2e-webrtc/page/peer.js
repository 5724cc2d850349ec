// The WebRTC-style peer of tests/e2e-webrtc/webrtc.mjs: SIP.js (from npm, served from the test's
// node_modules) registers over SIP-over-WebSocket (RFC 7118) with Kamailio, calls and answers
// with Chromium's RTCPeerConnection (audio only; ICE, DTLS-SRTP, rtcp-mux, BUNDLE as the browser
// does them). The test drives it through window.peer and reads what it exposes.
//
// URL parameters: ws (the WebSocket URL), user, password, domain.
// Candidates: the test network is loopback only, so the SDP this page sends keeps only the
// 127.0.0.1 candidates (Chromium gathers every interface; --allow-loopback-in-peer-connection
// adds loopback).
import * as SIP from '/sip.js/index.js';

const q = new URLSearchParams(location.search);
const logEl = document.getElementById('log');
const log = (m) => { logEl.textContent += `${new Date().toISOString().slice(11, 23)} ${m}\n`; };
const setState = (s) => { document.getElementById('state').textContent = s; document.body.dataset.state = s; log(`state ${s}`); };

// Keep only loopback UDP candidates, and point c=/m= at the first of them (Chromium's default
// candidate may be on another interface).
function loopbackOnly(sdp) {
  const lines = sdp.split('\r\n');
  const kept = [];
  let first = null;
  for (const l of lines) {
    if (l.startsWith('a=candidate:')) {
      const f = l.split(' ');
      if (f[4] !== '127.0.0.1' || f[2].toLowerCase() !== 'udp') continue;
      if (!first && f[1] === '1') first = { ip: f[4], port: f[5] };
    }
    kept.push(l);
  }
  if (!first) return kept.join('\r\n');
  return kept.map((l) => {
    if (l.startsWith('c=IN IP4 ')) return `c=IN IP4 ${first.ip}`;
    if (l.startsWith('m=audio ')) { const f = l.split(' '); f[1] = first.port; return f.join(' '); }
    return l;
  }).join('\r\n');
}

const proto = SIP.Web.SessionDescriptionHandler.prototype;
const origLocal = proto.getLocalSessionDescription;
proto.getLocalSessionDescription = function () {
  return origLocal.call(this).then((d) => {
    const sdp = loopbackOnly(d.sdp);
    window.peer.localSdps.push(sdp);
    return { type: d.type, sdp };
  });
};
const origRemote = proto.setRemoteSessionDescription;
proto.setRemoteSessionDescription = function (desc) {
  window.peer.remoteSdps.push(desc.sdp);
  return origRemote.call(this, desc);
};

const peer = {
  localSdps: [],
  remoteSdps: [],
  session: null,
  incoming: null,
  ended: 0,
  errors: [],
  state: () => document.body.dataset.state,
};
window.peer = peer;

function watchSession(session) {
  peer.session = session;
  session.stateChange.addListener((s) => {
    log(`session ${s}`);
    if (s === SIP.SessionState.Established) {
      const pc = session.sessionDescriptionHandler.peerConnection;
      const stream = new MediaStream();
      pc.getReceivers().forEach((r) => { if (r.track) stream.addTrack(r.track); });
      const el = document.getElementById('remote');
      el.srcObject = stream;
      el.play().catch((e) => log(`play: ${e}`));
      setState('incall');
    }
    if (s === SIP.SessionState.Terminated) {
      peer.ended += 1;
      setState('idle');
    }
  });
}

const sdhOptions = { constraints: { audio: true, video: false } };

const ua = new SIP.UserAgent({
  uri: SIP.UserAgent.makeURI(`sip:${q.get('user')}@${q.get('domain')}`),
  transportOptions: { server: q.get('ws') },
  authorizationUsername: q.get('user'),
  authorizationPassword: q.get('password'),
  displayName: 'Chromium',
  logLevel: 'warn',
  sessionDescriptionHandlerFactoryOptions: {
    // No STUN server: loopback only.
    peerConnectionConfiguration: { iceServers: [], bundlePolicy: 'max-bundle' },
    iceGatheringTimeout: 2000,
  },
  delegate: {
    onInvite(invitation) {
      log(`incoming call from ${invitation.remoteIdentity.uri}`);
      peer.incoming = invitation;
      watchSession(invitation);
      setState('ringing');
    },
  },
});

// Called by the test.
// withVideo: offer a camera too (the fake device), as a browser page often does.
peer.call = async (target, withVideo = false) => {
  const uri = SIP.UserAgent.makeURI(target);
  const options = withVideo ? { constraints: { audio: true, video: true } } : sdhOptions;
  const inviter = new SIP.Inviter(ua, uri, { sessionDescriptionHandlerOptions: options });
  watchSession(inviter);
  setState('calling');
  await inviter.invite();
};
peer.accept = async () => {
  await peer.incoming.accept({ sessionDescriptionHandlerOptions: sdhOptions });
};
// ICE restart (RFC 8445 §9): a re-INVITE whose offer carries new ICE credentials.
peer.restartIce = async () => {
  await peer.session.invite({ sessionDescriptionHandlerOptions: { ...sdhOptions, offerOptions: { iceRestart: true } } });
};
peer.hangup = async () => {
  const s = peer.session;
  if (s.state === SIP.SessionState.Established) await s.bye();
  else if (s instanceof SIP.Inviter) await s.cancel();
  else await s.reject();
};
// What the browser saw of the media: inbound/outbound RTP, the transport (DTLS state, SRTP
// cipher, selected candidate pair) from RTCPeerConnection.getStats().
peer.stats = async () => {
  const pc = peer.session && peer.session.sessionDescriptionHandler && peer.session.sessionDescriptionHandler.peerConnection;
  if (!pc) return null;
  const r = await pc.getStats();
  const out = { inbound: null, outbound: null, transport: null, pair: null, local: null, remote: null };
  const byId = {};
  r.forEach((s) => { byId[s.id] = s; });
  out.types = [];
  r.forEach((s) => out.types.push(`${s.type}${s.kind ? ':' + s.kind : ''}${s.dtlsState ? ':' + s.dtlsState : ''}`));
  r.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'audio') out.inbound = s;
    if (s.type === 'outbound-rtp' && s.kind === 'audio') out.outbound = s;
    if (s.type === 'transport') out.transport = s;
  });
  if (out.transport && out.transport.selectedCandidatePairId) {
    out.pair = byId[out.transport.selectedCandidatePairId] || null;
    if (out.pair) { out.local = byId[out.pair.localCandidateId] || null; out.remote = byId[out.pair.remoteCandidateId] || null; }
  }
  if (out.inbound && out.inbound.codecId) out.codec = byId[out.inbound.codecId] || null;
  return JSON.parse(JSON.stringify(out));
};

ua.start()
  .then(() => {
    const reg = new SIP.Registerer(ua);
    reg.stateChange.addListener((s) => { if (s === SIP.RegistererState.Registered) setState('registered'); });
    return reg.register();
  })
  .catch((e) => { peer.errors.push(String(e)); setState('error'); });
setState('starting');
