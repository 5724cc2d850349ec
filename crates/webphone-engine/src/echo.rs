//! The built-in echo test endpoint: lets a new user check microphone and speaker with no
//! account. It answers at once, plays back what it hears half a second later and hangs up by
//! itself after a minute.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{interval, MissedTickBehavior};

use webphone_audio::{AudioInput, AudioOutput};

/// The dialled number that reaches the echo endpoint when no server is configured.
pub const ECHO_NUMBER: &str = "echo";
/// Sample rate of the echo loop (the same narrowband rate as G.711 calls).
pub const ECHO_RATE: u32 = 8000;
const FRAME_MS: u64 = 20;
/// How long the user waits before hearing themselves.
pub const ECHO_DELAY: Duration = Duration::from_millis(500);
/// How long an echo test lasts before the endpoint hangs up.
pub const ECHO_LENGTH: Duration = Duration::from_secs(60);

/// Fixed-delay line over 20 ms frames: what goes in comes out `delay_frames` frames later,
/// silence before that.
#[derive(Debug)]
pub struct DelayLine {
    frames: VecDeque<Vec<i16>>,
    delay_frames: usize,
}

impl DelayLine {
    pub fn new(delay_frames: usize) -> Self {
        DelayLine {
            frames: VecDeque::with_capacity(delay_frames + 1),
            delay_frames,
        }
    }

    /// Pushes one frame and returns the frame due now.
    pub fn process(&mut self, frame: Vec<i16>) -> Vec<i16> {
        let len = frame.len();
        self.frames.push_back(frame);
        if self.frames.len() > self.delay_frames {
            self.frames.pop_front().unwrap_or_else(|| vec![0; len])
        } else {
            vec![0; len]
        }
    }
}

/// A running echo test.
pub struct EchoCall {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl EchoCall {
    /// Starts the echo loop; `on_end` runs when the minute is over (not when stopped).
    pub fn start(
        mut input: Box<dyn AudioInput>,
        mut output: Box<dyn AudioOutput>,
        length: Duration,
        on_end: impl FnOnce() + Send + 'static,
    ) -> EchoCall {
        let (stop_tx, mut stop_rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            let samples = (ECHO_RATE as u64 * FRAME_MS / 1000) as usize;
            let delay = (ECHO_DELAY.as_millis() as u64 / FRAME_MS) as usize;
            let mut line = DelayLine::new(delay);
            let mut tick = interval(Duration::from_millis(FRAME_MS));
            tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
            let deadline = tokio::time::sleep(length);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    _ = &mut stop_rx => return,
                    _ = &mut deadline => break,
                    _ = tick.tick() => {
                        let mut frame = vec![0i16; samples];
                        input.read_frame(&mut frame);
                        output.write_frame(&line.process(frame));
                    }
                }
            }
            drop(output);
            on_end();
        });
        EchoCall {
            stop: Some(stop_tx),
            task,
        }
    }

    /// Stops the loop and closes the devices (a file output is finalised).
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let _ = (&mut self.task).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_line_returns_frames_after_the_delay() {
        let mut d = DelayLine::new(2);
        assert_eq!(d.process(vec![1; 4]), vec![0; 4]);
        assert_eq!(d.process(vec![2; 4]), vec![0; 4]);
        assert_eq!(d.process(vec![3; 4]), vec![1; 4]);
        assert_eq!(d.process(vec![4; 4]), vec![2; 4]);
    }

    #[test]
    fn half_second_is_25_frames() {
        assert_eq!(ECHO_DELAY.as_millis() as u64 / FRAME_MS, 25);
    }
}
