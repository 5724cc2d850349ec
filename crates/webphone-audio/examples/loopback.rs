//! Manual check of a device pair: plays a 440 Hz tone to the output and prints, once a second,
//! what the input captured (level and 440 Hz amplitude), with the crate's logs on stderr.
//!
//! ```text
//! RUST_LOG=webphone_audio=debug cargo run -p webphone-audio --example loopback -- alsa:default alsa:default 20
//! ```
//! `--list` as the only argument prints the device ids `list_devices` returns.
//! With PulseAudio's null sink, `alsa:default` capture is the sink's monitor, so the tone comes
//! back. Kill and restart the server meanwhile (`pulseaudio -k; pulseaudio -D ...`) to watch the
//! streams being rebuilt.

use std::f64::consts::PI;
use std::time::{Duration, Instant};

use webphone_audio::{list_devices, open_input, open_output, DeviceSpec, Direction};

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("webphone_audio=info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).is_some_and(|a| a == "--list") {
        for dir in [Direction::Input, Direction::Output] {
            match list_devices(dir) {
                Ok(ids) => println!("{dir}: {}", ids.join(", ")),
                Err(e) => println!("{dir}: error: {e}"),
            }
        }
        return;
    }
    let out_spec = DeviceSpec::parse(args.get(1).map_or("default", String::as_str));
    let in_spec = DeviceSpec::parse(args.get(2).map_or("default", String::as_str));
    let secs: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10);
    const RATE: u32 = 8000;
    const N: usize = 160;

    let mut output = match open_output(&out_spec, RATE) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("cannot open output {out_spec}: {e}");
            std::process::exit(1);
        }
    };
    let mut input = match open_input(&in_spec, RATE) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("cannot open input {in_spec}: {e}");
            std::process::exit(1);
        }
    };
    let start = Instant::now();
    let mut next = start;
    let mut phase = 0usize;
    let mut second: Vec<i16> = Vec::with_capacity(RATE as usize);
    let mut frame = [0i16; N];
    while start.elapsed() < Duration::from_secs(secs) {
        let tone: Vec<i16> = (0..N)
            .map(|k| {
                let t = (phase + k) as f64 / f64::from(RATE);
                (16000.0 * (2.0 * PI * 440.0 * t).sin()) as i16
            })
            .collect();
        phase += N;
        output.write_frame(&tone);
        input.read_frame(&mut frame);
        second.extend_from_slice(&frame);
        if second.len() >= RATE as usize {
            let rms = (second
                .iter()
                .map(|&v| (f64::from(v) / 32768.0).powi(2))
                .sum::<f64>()
                / second.len() as f64)
                .sqrt();
            let w = 2.0 * PI * 440.0 / f64::from(RATE);
            let c = 2.0 * w.cos();
            let (mut s1, mut s2) = (0.0f64, 0.0f64);
            for &v in &second {
                let s = f64::from(v) / 32768.0 + c * s1 - s2;
                s2 = s1;
                s1 = s;
            }
            let amp = 2.0 * (s1 * s1 + s2 * s2 - c * s1 * s2).max(0.0).sqrt() / second.len() as f64;
            println!(
                "t={:5.1}s captured rms {rms:.3}, 440 Hz amplitude {amp:.3} (played 0.488)",
                start.elapsed().as_secs_f64()
            );
            second.clear();
        }
        next += Duration::from_millis(20);
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
    }
}
