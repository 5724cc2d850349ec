//! Minimal RIFF/WAVE support: a crash-safe 16-bit PCM writer and a reader for the usual PCM and
//! float formats (downmixed to mono).
//!
//! The writer puts a complete header on disk when the file is created and rewrites the two size
//! fields whenever [`WavWriter::update_header`] is called, so a file cut short by a crash is a
//! valid WAV holding everything up to the last update.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Errors reading or writing WAV files; each names the file.
#[derive(Debug, Error)]
pub enum WavError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a WAV file we can play.
    #[error("{path}: {what}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The data would exceed the 4 GiB a RIFF header can describe.
    #[error("{path}: WAV file reached the 4 GiB limit")]
    Full {
        /// The file.
        path: PathBuf,
    },
}

const HEADER_LEN: u64 = 44;
/// Largest data chunk a RIFF size field can describe, leaving room for the header.
const MAX_DATA_BYTES: u64 = u32::MAX as u64 - HEADER_LEN;

/// A 16-bit PCM WAV file being written.
#[derive(Debug)]
pub struct WavWriter {
    path: PathBuf,
    out: BufWriter<File>,
    channels: u16,
    rate: u32,
    data_bytes: u64,
    scratch: Vec<u8>,
}

fn header(channels: u16, rate: u32, data_bytes: u32) -> [u8; HEADER_LEN as usize] {
    let block_align = channels * 2;
    let byte_rate = rate * u32::from(block_align);
    let mut h = [0u8; HEADER_LEN as usize];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(36 + data_bytes).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&channels.to_le_bytes());
    h[24..28].copy_from_slice(&rate.to_le_bytes());
    h[28..32].copy_from_slice(&byte_rate.to_le_bytes());
    h[32..34].copy_from_slice(&block_align.to_le_bytes());
    h[34..36].copy_from_slice(&16u16.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_bytes.to_le_bytes());
    h
}

impl WavWriter {
    /// Create (or truncate) `path` and write a valid empty WAV to it. The directory must exist.
    pub fn create(path: &Path, rate: u32, channels: u16) -> Result<WavWriter, WavError> {
        let io = |source| WavError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::create(path).map_err(io)?;
        let mut out = BufWriter::with_capacity(64 * 1024, file);
        out.write_all(&header(channels.max(1), rate, 0))
            .and_then(|()| out.flush())
            .map_err(io)?;
        Ok(WavWriter {
            path: path.to_path_buf(),
            out,
            channels: channels.max(1),
            rate,
            data_bytes: 0,
            scratch: Vec::with_capacity(8 * 1024),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Channels per frame.
    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Sample rate.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Samples written so far (all channels).
    pub fn samples_written(&self) -> u64 {
        self.data_bytes / 2
    }

    /// Append interleaved samples (buffered; on disk after the next [`WavWriter::update_header`]).
    pub fn write_samples(&mut self, samples: &[i16]) -> Result<(), WavError> {
        let bytes = samples.len() as u64 * 2;
        if self.data_bytes + bytes > MAX_DATA_BYTES {
            return Err(WavError::Full {
                path: self.path.clone(),
            });
        }
        self.scratch.clear();
        for s in samples {
            self.scratch.extend_from_slice(&s.to_le_bytes());
        }
        self.out
            .write_all(&self.scratch)
            .map_err(|source| WavError::Io {
                path: self.path.clone(),
                source,
            })?;
        self.data_bytes += bytes;
        Ok(())
    }

    /// Flush buffered samples and rewrite the size fields so the file on disk is complete.
    pub fn update_header(&mut self) -> Result<(), WavError> {
        let data = self.data_bytes as u32; // <= MAX_DATA_BYTES
        let result = (|| {
            self.out.flush()?;
            let f = self.out.get_mut();
            f.seek(SeekFrom::Start(4))?;
            f.write_all(&(36 + data).to_le_bytes())?;
            f.seek(SeekFrom::Start(40))?;
            f.write_all(&data.to_le_bytes())?;
            f.seek(SeekFrom::End(0))?;
            Ok(())
        })();
        result.map_err(|source| WavError::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// Write the final header and close the file; returns the samples written.
    pub fn finish(mut self) -> Result<u64, WavError> {
        self.update_header()?;
        Ok(self.samples_written())
    }
}

/// A WAV file loaded as mono samples at i16 scale.
#[derive(Debug, Clone, PartialEq)]
pub struct WavData {
    /// Sample rate of the file.
    pub rate: u32,
    /// Channels in the file (the samples are their average).
    pub channels: u16,
    /// Mono samples (i16 scale, float).
    pub samples: Vec<f32>,
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(i..i + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

/// Read a whole WAV file: PCM 8/16/24/32-bit or IEEE float 32/64-bit, any channel count
/// (WAVE_FORMAT_EXTENSIBLE too), downmixed to mono.
pub fn read_wav(path: &Path) -> Result<WavData, WavError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|source| WavError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    parse_wav(&bytes).map_err(|what| WavError::Format {
        path: path.to_path_buf(),
        what,
    })
}

/// Parse WAV bytes (see [`read_wav`]).
pub fn parse_wav(b: &[u8]) -> Result<WavData, String> {
    if b.len() < 12 || &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return Err("not a RIFF/WAVE file".into());
    }
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    let mut data: Option<&[u8]> = None;
    let mut i = 12;
    while i + 8 <= b.len() {
        let id = &b[i..i + 4];
        let size = u32_at(b, i + 4).ok_or("truncated chunk header")? as usize;
        let start = i + 8;
        // Streaming writers leave 0 or 0xFFFFFFFF in the data size: take the rest of the file.
        let end = if id == b"data" && (size == 0 || start.saturating_add(size) > b.len()) {
            b.len()
        } else {
            start.saturating_add(size).min(b.len())
        };
        let body = &b[start..end];
        if id == b"fmt " {
            let mut tag = u16_at(body, 0).ok_or("short fmt chunk")?;
            let channels = u16_at(body, 2).ok_or("short fmt chunk")?;
            let rate = u32_at(body, 4).ok_or("short fmt chunk")?;
            let bits = u16_at(body, 14).ok_or("short fmt chunk")?;
            if tag == 0xFFFE {
                tag = u16_at(body, 24).ok_or("short extensible fmt chunk")?;
            }
            fmt = Some((tag, channels, rate, bits));
        } else if id == b"data" {
            data = Some(body);
        }
        // Chunks are padded to even sizes.
        i = end + (size & 1);
        if data.is_some() && fmt.is_some() {
            break;
        }
    }
    let (tag, channels, rate, bits) = fmt.ok_or("no fmt chunk")?;
    let data = data.ok_or("no data chunk")?;
    if channels == 0 || rate == 0 {
        return Err("zero channels or rate".into());
    }
    let width = match (tag, bits) {
        (1, 8) => 1,
        (1, 16) => 2,
        (1, 24) => 3,
        (1, 32) | (3, 32) => 4,
        (3, 64) => 8,
        _ => return Err(format!("unsupported sample format {tag} with {bits} bits")),
    };
    let frame = width * usize::from(channels);
    let decode = |s: &[u8]| -> f32 {
        match (tag, width) {
            (1, 1) => (f32::from(s[0]) - 128.0) * 256.0,
            (1, 2) => f32::from(i16::from_le_bytes([s[0], s[1]])),
            (1, 3) => (i32::from_le_bytes([0, s[0], s[1], s[2]]) >> 8) as f32 / 256.0,
            (1, 4) => i32::from_le_bytes([s[0], s[1], s[2], s[3]]) as f32 / 65_536.0,
            (3, 4) => f32::from_le_bytes([s[0], s[1], s[2], s[3]]) * 32_767.0,
            _ => {
                let v = f64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]);
                (v * 32_767.0) as f32
            }
        }
    };
    let samples: Vec<f32> = data
        .chunks_exact(frame)
        .map(|f| {
            let sum: f32 = f.chunks_exact(width).map(decode).sum();
            sum / f32::from(channels)
        })
        .collect();
    if samples.is_empty() {
        return Err("no samples".into());
    }
    Ok(WavData {
        rate,
        channels,
        samples,
    })
}

/// Read a 16-bit PCM WAV written by [`WavWriter`] as interleaved samples plus its header fields
/// (rate, channels); for tests and checks. Fails on other formats.
pub fn read_wav_i16(path: &Path) -> Result<(u32, u16, Vec<i16>), WavError> {
    let mut b = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut b))
        .map_err(|source| WavError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let bad = |what: &str| WavError::Format {
        path: path.to_path_buf(),
        what: what.to_string(),
    };
    if b.len() < HEADER_LEN as usize || &b[0..4] != b"RIFF" || &b[36..40] != b"data" {
        return Err(bad("not a WAV written by WavWriter"));
    }
    let channels = u16_at(&b, 22).ok_or_else(|| bad("short header"))?;
    let rate = u32_at(&b, 24).ok_or_else(|| bad("short header"))?;
    let bits = u16_at(&b, 34).ok_or_else(|| bad("short header"))?;
    let size = u32_at(&b, 40).ok_or_else(|| bad("short header"))? as usize;
    if bits != 16 {
        return Err(bad("not 16-bit"));
    }
    let end = (HEADER_LEN as usize + size).min(b.len());
    let samples = b[HEADER_LEN as usize..end]
        .chunks_exact(2)
        .map(|s| i16::from_le_bytes([s[0], s[1]]))
        .collect();
    Ok((rate, channels, samples))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wp-wav-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn writer_output_reads_back_and_is_valid_before_finish() {
        let dir = temp("w");
        let p = dir.join("a.wav");
        let mut w = WavWriter::create(&p, 8000, 2).expect("create");
        assert_eq!(read_wav_i16(&p).expect("empty ok").2.len(), 0);
        w.write_samples(&[1, -2, 3, -4]).expect("write");
        w.update_header().expect("hdr");
        w.write_samples(&[5, 6]).expect("write");
        // Not yet flushed: the header still says 4 samples.
        let (rate, ch, s) = read_wav_i16(&p).expect("read");
        assert_eq!((rate, ch, s), (8000, 2, vec![1, -2, 3, -4]));
        std::mem::forget(w); // a "crash": no finish, no drop
        let parsed = read_wav(&p).expect("parse");
        assert_eq!(parsed.samples, vec![-0.5, -0.5]);
    }

    #[test]
    fn reader_handles_8_bit_float_and_rejects_garbage() {
        let mut b = header(1, 16000, 2).to_vec();
        b[20..22].copy_from_slice(&1u16.to_le_bytes());
        b[34..36].copy_from_slice(&8u16.to_le_bytes());
        b.extend_from_slice(&[128, 255]);
        let d = parse_wav(&b).expect("8-bit");
        assert_eq!(d.samples, vec![0.0, 127.0 * 256.0]);
        let mut f = header(1, 48000, 4).to_vec();
        f[20..22].copy_from_slice(&3u16.to_le_bytes());
        f[34..36].copy_from_slice(&32u16.to_le_bytes());
        f.extend_from_slice(&0.5f32.to_le_bytes());
        assert_eq!(parse_wav(&f).expect("float").samples, vec![0.5 * 32_767.0]);
        assert!(parse_wav(b"RIFF\0\0\0\0WAVEjunk").is_err());
        assert!(parse_wav(b"hello").is_err());
    }
}
