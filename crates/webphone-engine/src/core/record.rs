//! Call recording to WAV (`voicerecord`, and every call when `voicerecupload` is set), with
//! the VREC progress notifications: stage 1 when recording begins, 2 and 3 (or 4) when the
//! file is delivered to its destination: a local path, or an `http(s)://` / `ftp://` URL the
//! file is uploaded to after the call (`crate::integrations`, VREC types 3 and 2).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use webphone_media::local::recorder::RecorderThread;
use webphone_media::local::{CallRecorder, RecordChannels};

use super::{arg, bad, Core, Severity};
use crate::phone::ApiError;

/// VREC upload type for a local file (notifications §9).
const TYPE_LOCAL: u8 = 1;

/// Replaces the catalog's tokens in a recording destination (DATETIME, DATE, TIME, CALLID,
/// USER, CALLER, CALLED, SERVER, COUNTER); characters unsafe in file names become `_`.
pub(super) fn expand_tokens(template: &str, values: &[(&str, String)]) -> String {
    let mut out = template.to_string();
    // Longest names first, so DATETIME is not eaten by DATE or TIME.
    let mut vals: Vec<&(&str, String)> = values.iter().collect();
    vals.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    for (k, v) in vals {
        let safe: String = v
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.+".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        out = out.replace(k, &safe);
    }
    out
}

/// What `voicerecording` and `voicerecupload` ask for a call that connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum AutoRecord {
    /// No automatic recording.
    Off,
    /// Record to `dest` (empty: the profile's `recordings/` folder; a URL: recorded there and
    /// uploaded); `keep_local` false deletes the local file after a successful upload.
    To { dest: String, keep_local: bool },
    /// The setting cannot be followed (remote only without a remote destination).
    Invalid(&'static str),
}

/// `voicerecording` (0 no, 1 local file, 2 remote only, 3 local and remote) with
/// `voicerecupload` (a folder, file or URL). Unset `voicerecording`: every call is recorded
/// when `voicerecupload` is set, kept locally and uploaded when it is a URL.
pub(super) fn auto_record(voicerecording: Option<i64>, upload: &str) -> AutoRecord {
    let upload = upload.trim();
    let remote = crate::integrations::Integrations::is_upload_url(upload);
    let to = |dest: &str, keep_local| AutoRecord::To {
        dest: dest.to_string(),
        keep_local,
    };
    match voicerecording {
        None | Some(4..) | Some(..=-1) if upload.is_empty() => AutoRecord::Off,
        None | Some(4..) | Some(..=-1) => to(upload, true),
        Some(0) => AutoRecord::Off,
        // a local file: the configured folder or file, else the profile's folder
        Some(1) if remote => to("", true),
        Some(1) => to(upload, true),
        Some(2) if remote => to(upload, false),
        Some(2) => AutoRecord::Invalid(
            "voicerecording 2 (remote only) needs an http(s):// or ftp:// voicerecupload",
        ),
        // 3: local and remote (a local destination: local only)
        Some(_) => to(upload, true),
    }
}

impl Core {
    /// The automatic recording of a call that has just connected (`voicerecording`,
    /// `voicerecupload`).
    pub(super) fn auto_record_line(&mut self, n: usize) {
        let mode = self.params.get_i64("voicerecording");
        match auto_record(mode, &self.params.get("voicerecupload")) {
            AutoRecord::Off => {}
            AutoRecord::Invalid(why) => self.log(Severity::Warning, why),
            AutoRecord::To { dest, keep_local } => {
                if let Err(e) = self.start_recording_keeping(n, &dest, keep_local) {
                    self.log(Severity::Warning, &format!("call recording: {e}"));
                }
            }
        }
    }

    /// Where a recording of line `n` goes: `dest` may be a folder, a file name, or empty (the
    /// profile's `recordings/` folder), or a URL: recorded into that folder, then uploaded.
    fn recording_path(&self, n: usize, dest: &str, keep_local: bool) -> Result<PathBuf, ApiError> {
        let dest = dest.trim();
        // http(s) / ftp: recorded into the profile's folder, uploaded when closed
        // (crate::integrations).
        let upload = crate::integrations::Integrations::is_upload_url(dest);
        let Some(l) = self.lines.get(n) else {
            return Err(ApiError::Failed("no such line".into()));
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let me = self.username();
        let (caller, called) = match l.direction {
            super::Direction::Outgoing => (me.clone(), l.peername.clone()),
            super::Direction::Incoming => (l.peername.clone(), me.clone()),
        };
        let values = [
            ("DATETIME", now.to_string()),
            ("DATE", (now / 86_400).to_string()),
            ("TIME", (now % 86_400).to_string()),
            ("CALLID", l.callid.clone()),
            ("USER", me),
            ("CALLER", caller),
            ("CALLED", called),
            ("SERVER", self.server()),
            ("COUNTER", self.next_echo_id.to_string()),
        ];
        let default_name = format!("call-{now}-line{n}.wav");
        let path = if dest.is_empty() || upload {
            self.work_dir.join("recordings").join(default_name)
        } else {
            let p = PathBuf::from(expand_tokens(dest, &values));
            if p.is_dir() || dest.ends_with('/') {
                p.join(default_name)
            } else if p.extension().is_none() {
                p.with_extension("wav")
            } else {
                p
            }
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| ApiError::Failed(format!("cannot create {}: {e}", dir.display())))?;
        }
        if upload {
            self.integrations
                .plan_upload_with(dest, n, &path, &values, keep_local);
        }
        Ok(path)
    }

    /// Starts recording line `n` into `dest` (stereo: left us, right the peer).
    pub(super) fn start_recording(&mut self, n: usize, dest: &str) -> Result<PathBuf, ApiError> {
        self.start_recording_keeping(n, dest, true)
    }

    /// [`start_recording`](Self::start_recording); without `keep_local` a recording that is
    /// uploaded is deleted locally once the upload succeeded.
    fn start_recording_keeping(
        &mut self,
        n: usize,
        dest: &str,
        keep_local: bool,
    ) -> Result<PathBuf, ApiError> {
        let path = self.recording_path(n, dest, keep_local)?;
        let Some(l) = self.lines.get_mut(n) else {
            return Err(ApiError::Failed("no such line".into()));
        };
        if l.recording.is_some() {
            return Err(ApiError::Failed(format!(
                "line {n} is being recorded already"
            )));
        }
        let rate = l
            .neg
            .as_ref()
            .map(|neg| neg.codec.audio_rate())
            .ok_or_else(|| ApiError::Failed("the call has no audio yet".into()))?;
        let rec = CallRecorder::start(&l.tap, &path, rate, RecordChannels::Stereo)
            .map_err(|e| ApiError::Failed(e.to_string()))?;
        let thread = rec
            .spawn(Duration::from_millis(200))
            .map_err(|e| ApiError::Failed(e.to_string()))?;
        l.recording = Some(thread);
        // Stage 1: recording begins (type and path are not reported at this stage).
        self.notify(format!("VREC,{n},1,0,,"));
        self.log(
            Severity::Event,
            &format!("line {n}: recording to {}", path.display()),
        );
        Ok(path)
    }

    /// Closes a recording and reports its delivery (a local file: stages 2 and 3, or 4).
    pub(super) fn recording_done(&mut self, n: usize, rec: RecorderThread) {
        let path = rec.path().to_path_buf();
        let shown = crate::notify::field(&path.display().to_string());
        self.notify(format!("VREC,{n},2,{TYPE_LOCAL},{shown},"));
        match rec.finish() {
            Ok(summary) => {
                self.notify(format!("VREC,-1,3,{TYPE_LOCAL},{shown},"));
                self.log(
                    Severity::Event,
                    &format!(
                        "recording of line {n} saved: {} ({} ms)",
                        summary.path.display(),
                        summary.duration_ms
                    ),
                );
                if let Err(e) = self.integrations.recording_saved(&path) {
                    self.log(Severity::Warning, &format!("recording upload: {e}"));
                }
            }
            Err(e) => {
                let why = crate::notify::text(&e.to_string());
                self.notify(format!("VREC,-1,4,{TYPE_LOCAL},{shown},{why}"));
            }
        }
    }

    /// `voicerecord(start, destination)` on the current line.
    pub(super) fn voicerecord_api(&mut self, args: &[String]) -> Result<Value, ApiError> {
        let usage = "usage: voicerecord(start, destination): start true|false, destination a folder or file (optional)";
        let start = arg(args, 0)
            .and_then(crate::params::parse_bool)
            .ok_or_else(|| bad(usage))?;
        let sel = self.default_sel(arg(args, 2))?;
        let n = self
            .lines
            .select(sel)
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::Failed("no call to record".into()))?;
        if start {
            let dest = arg(args, 1).unwrap_or("").to_string();
            let path = self.start_recording(n, &dest)?;
            Ok(Value::from(path.display().to_string()))
        } else {
            let rec = self
                .lines
                .get_mut(n)
                .and_then(|l| l.recording.take())
                .ok_or_else(|| ApiError::Failed(format!("line {n} is not being recorded")))?;
            let path = rec.path().to_path_buf();
            self.recording_done(n, rec);
            Ok(Value::from(path.display().to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voicerecording_modes_pick_the_destination_and_what_stays_local() {
        let url = "https://rec.example.org/up/CALLID.wav";
        let to = |dest: &str, keep_local| AutoRecord::To {
            dest: dest.into(),
            keep_local,
        };
        assert_eq!(auto_record(None, ""), AutoRecord::Off);
        assert_eq!(
            auto_record(None, url),
            to(url, true),
            "voicerecupload alone"
        );
        assert_eq!(auto_record(None, "/srv/rec/"), to("/srv/rec/", true));
        assert_eq!(auto_record(Some(0), url), AutoRecord::Off);
        assert_eq!(auto_record(Some(1), url), to("", true), "local only");
        assert_eq!(auto_record(Some(1), ""), to("", true));
        assert_eq!(auto_record(Some(1), "/srv/rec/"), to("/srv/rec/", true));
        assert_eq!(auto_record(Some(2), url), to(url, false), "remote only");
        assert!(matches!(auto_record(Some(2), ""), AutoRecord::Invalid(_)));
        assert!(matches!(
            auto_record(Some(2), "/srv/rec/"),
            AutoRecord::Invalid(_)
        ));
        assert_eq!(auto_record(Some(3), url), to(url, true), "both");
        assert_eq!(auto_record(Some(3), ""), to("", true));
    }

    #[test]
    fn tokens_are_replaced_longest_first_and_made_file_safe() {
        let v = [
            ("DATETIME", "1700000000".to_string()),
            ("DATE", "19675".to_string()),
            ("CALLER", "Bob Smith".to_string()),
            ("CALLID", "a/b@c".to_string()),
        ];
        assert_eq!(
            expand_tokens("/rec/DATETIME-CALLER-CALLID.wav", &v),
            "/rec/1700000000-Bob_Smith-a_b_c.wav"
        );
        assert_eq!(expand_tokens("DATE", &v), "19675");
    }
}
