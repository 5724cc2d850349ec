//! cpal devices (work in progress).
use crate::{AudioError, AudioInput, AudioOutput, Direction};

pub struct CpalInput;
pub struct CpalOutput;

impl CpalInput {
    pub fn open(name: Option<&str>, _rate: u32) -> Result<CpalInput, AudioError> {
        Err(AudioError::DeviceNotFound {
            name: name.unwrap_or("default").into(),
            direction: Direction::Input,
        })
    }
}
impl CpalOutput {
    pub fn open(name: Option<&str>, _rate: u32) -> Result<CpalOutput, AudioError> {
        Err(AudioError::DeviceNotFound {
            name: name.unwrap_or("default").into(),
            direction: Direction::Output,
        })
    }
}
impl AudioInput for CpalInput {
    fn read_frame(&mut self, out: &mut [i16]) {
        out.fill(0)
    }
}
impl AudioOutput for CpalOutput {
    fn write_frame(&mut self, _f: &[i16]) {}
}
pub fn list(_dir: Direction) -> Result<Vec<String>, AudioError> {
    Ok(Vec::new())
}
