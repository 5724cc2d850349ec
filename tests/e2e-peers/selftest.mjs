// Self-test of peers.mjs against the real programs: Kamailio, baresip 1002 (auto answer)
// and baresip 1003 registered with it; 1003 calls 1002 through the proxy, the call is
// established on both sides, 1003 hangs up, both see CALL_CLOSED.
//   node tests/e2e-peers/selftest.mjs
// Skips loudly without kamailio/baresip (fails with CI=true).
import { requirePeers, startKamailio, startBaresip } from './peers.mjs';

requirePeers(['kamailio', 'baresip'], 'tests/e2e-peers/selftest.mjs');
const say = (m) => console.log(`[e2e-peers] ${m}`);
const started = [];
try {
  const k = await startKamailio();
  started.push(k);
  say(`kamailio on ${k.addr}`);
  const callee = await startBaresip({ user: '1002', kamailio: k, answer: 'auto' });
  started.push(callee);
  const caller = await startBaresip({ user: '1003', kamailio: k, answer: 'manual', toneHz: 440 });
  started.push(caller);
  say(`baresip 1002 on ${callee.sipPort}, 1003 on ${caller.sipPort}, both registered`);
  await k.waitLine(['REGISTERED', '1002']);
  await caller.command(`dial ${callee.uri}`);
  await callee.waitEvent('CALL_ESTABLISHED');
  await caller.waitEvent('CALL_ESTABLISHED');
  say('call 1003 -> 1002 established on both sides');
  await caller.command('hangup');
  await callee.waitEvent('CALL_CLOSED');
  await caller.waitEvent('CALL_CLOSED');
  say('hung up; both sides closed');
  const invites = k.lines().filter((l) => l.startsWith('REQ INVITE'));
  if (invites.length < 1) throw new Error('kamailio saw no INVITE');
  say('PASS');
} finally {
  for (const p of started.reverse()) await p.stop();
}
