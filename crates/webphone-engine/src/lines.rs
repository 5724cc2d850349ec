//! Phone lines: every call (incoming, outgoing, echo test) occupies one numbered line.
//!
//! Line numbers follow the API: `1..=N` are channels, `-1` means the current (active) line, `-2`
//! all lines, `0` undefined. A new call takes the first free line and becomes the active line.

/// How many simultaneous calls the engine accepts. A desktop user has a handful; a headless
/// engine (auto-answer services, load tests) may carry many more, so the limit is about
/// resources (an RTP socket pair and a media task per call), not about the user interface.
pub const MAX_LINES: usize = 1000;

/// Table of occupied lines, generic over what a line holds so the rules are testable alone.
///
/// The table grows with the calls and shrinks when the highest lines free up, and each call
/// is boxed: an idle engine holds no line storage (a call's state is a few KiB, and a table
/// of [`MAX_LINES`] inline slots would cost megabytes of resident memory before any call).
#[derive(Debug)]
pub struct Lines<T> {
    slots: Vec<Option<Box<T>>>,
    /// Line numbers above this are refused.
    max: usize,
    active: Option<usize>,
}

impl<T> Default for Lines<T> {
    fn default() -> Self {
        Self::new(MAX_LINES)
    }
}

/// Which lines an API call addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineSel {
    /// `-2`: every line.
    All,
    /// `-1` (or no argument): the active line.
    Current,
    /// `1..=N`.
    Number(usize),
}

impl LineSel {
    /// Parses a line argument as the API gives it (a string; empty means current).
    pub fn parse(arg: Option<&str>) -> Result<LineSel, String> {
        let s = arg.map(str::trim).unwrap_or("");
        if s.is_empty() {
            return Ok(LineSel::Current);
        }
        match s.parse::<i64>() {
            Ok(-2) => Ok(LineSel::All),
            Ok(-1) | Ok(0) => Ok(LineSel::Current),
            Ok(n) if n >= 1 && n <= MAX_LINES as i64 => Ok(LineSel::Number(n as usize)),
            _ => Err(format!(
                "invalid line '{s}': use -2 (all), -1 (current) or 1..{MAX_LINES}"
            )),
        }
    }
}

impl<T> Lines<T> {
    /// An empty table of at most `max` lines (nothing is allocated until the first call).
    pub fn new(max: usize) -> Self {
        Lines {
            slots: Vec::new(),
            max,
            active: None,
        }
    }

    /// Puts `value` on the first free line, makes it active and returns its number.
    pub fn alloc(&mut self, value: T) -> Option<usize> {
        let idx = match self.slots.iter().position(Option::is_none) {
            Some(idx) => idx,
            None if self.slots.len() < self.max => {
                self.slots.push(None);
                self.slots.len() - 1
            }
            None => return None,
        };
        let slot = self.slots.get_mut(idx)?;
        *slot = Some(Box::new(value));
        self.active = Some(idx + 1);
        Some(idx + 1)
    }

    pub fn get(&self, line: usize) -> Option<&T> {
        self.slots.get(line.checked_sub(1)?)?.as_deref()
    }

    pub fn get_mut(&mut self, line: usize) -> Option<&mut T> {
        self.slots.get_mut(line.checked_sub(1)?)?.as_deref_mut()
    }

    /// Frees a line; the active line moves to the lowest busy line, if any.
    pub fn remove(&mut self, line: usize) -> Option<T> {
        let v = self.slots.get_mut(line.checked_sub(1)?)?.take().map(|b| *b);
        // Free lines at the top are dropped, and the table's storage once it is mostly empty.
        while self.slots.last().is_some_and(Option::is_none) {
            self.slots.pop();
        }
        if self.slots.capacity() > 4 * self.slots.len().max(4) {
            self.slots.shrink_to(self.slots.len() * 2);
        }
        if self.active == Some(line) {
            let next = self.busy().next();
            self.active = next;
        }
        v
    }

    /// Makes a busy line the active one; false when the line holds no call.
    pub fn set_active(&mut self, line: usize) -> bool {
        if self.get(line).is_some() {
            self.active = Some(line);
            true
        } else {
            false
        }
    }

    /// The active line, if it holds a call.
    pub fn active(&self) -> Option<usize> {
        self.active.filter(|l| self.get(*l).is_some())
    }

    /// Busy line numbers in ascending order.
    pub fn busy(&self) -> impl Iterator<Item = usize> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .map(|(i, _)| i + 1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (usize, &T)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_deref().map(|v| (i + 1, v)))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut T)> + '_ {
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(|(i, s)| s.as_deref_mut().map(|v| (i + 1, v)))
    }

    /// Resolves a selection to busy line numbers.
    pub fn select(&self, sel: LineSel) -> Vec<usize> {
        match sel {
            LineSel::All => self.busy().collect(),
            LineSel::Current => self.active().into_iter().collect(),
            LineSel::Number(n) => self.get(n).map(|_| n).into_iter().collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(Option::is_none)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_call_takes_first_free_line_and_becomes_active() {
        let mut l = Lines::new(3);
        assert_eq!(l.alloc("a"), Some(1));
        assert_eq!(l.alloc("b"), Some(2));
        assert_eq!(l.active(), Some(2));
        l.remove(1);
        assert_eq!(l.alloc("c"), Some(1));
        assert_eq!(l.active(), Some(1));
    }

    #[test]
    fn all_lines_busy_refuses_a_call() {
        let mut l = Lines::new(1);
        assert_eq!(l.alloc(1), Some(1));
        assert_eq!(l.alloc(2), None);
    }

    #[test]
    fn removing_active_line_falls_back_to_a_busy_one() {
        let mut l = Lines::new(3);
        l.alloc(1);
        l.alloc(2);
        l.remove(2);
        assert_eq!(l.active(), Some(1));
        assert!(!l.set_active(2));
        l.remove(1);
        assert_eq!(l.active(), None);
        assert!(l.is_empty());
    }

    #[test]
    fn lines_keep_their_numbers_while_the_table_grows_and_shrinks() {
        let mut l = Lines::new(MAX_LINES);
        assert_eq!(l.slots.capacity(), 0, "an idle table allocates nothing");
        for i in 1..=5 {
            assert_eq!(l.alloc(i), Some(i));
        }
        l.remove(2);
        l.remove(5);
        assert_eq!(l.select(LineSel::All), vec![1, 3, 4]);
        assert_eq!(l.get(4), Some(&4));
        assert_eq!(l.get(5), None);
        // The first free line is taken again, then the table grows at the top.
        assert_eq!(l.alloc(20), Some(2));
        assert_eq!(l.alloc(50), Some(5));
        for n in [1, 2, 3, 4, 5] {
            l.remove(n);
        }
        assert!(l.is_empty());
        assert_eq!(l.slots.len(), 0);
    }

    #[test]
    fn storage_of_a_thousand_calls_is_returned_when_they_end() {
        let mut l = Lines::new(MAX_LINES);
        for i in 1..=MAX_LINES {
            assert_eq!(l.alloc(i), Some(i));
        }
        assert_eq!(l.alloc(0), None, "line {} is refused", MAX_LINES + 1);
        for n in 1..=MAX_LINES {
            l.remove(n);
        }
        assert!(l.slots.capacity() <= 16, "capacity {}", l.slots.capacity());
    }

    #[test]
    fn line_arguments_follow_api_semantics() {
        assert_eq!(LineSel::parse(None), Ok(LineSel::Current));
        assert_eq!(LineSel::parse(Some("-1")), Ok(LineSel::Current));
        assert_eq!(LineSel::parse(Some("-2")), Ok(LineSel::All));
        assert_eq!(LineSel::parse(Some(" 3 ")), Ok(LineSel::Number(3)));
        assert!(LineSel::parse(Some("99")).is_ok());
        assert!(LineSel::parse(Some("1001")).is_err());
        assert!(LineSel::parse(Some("x")).is_err());
        let mut l = Lines::new(3);
        l.alloc(1);
        l.alloc(2);
        assert_eq!(l.select(LineSel::All), vec![1, 2]);
        assert_eq!(l.select(LineSel::Current), vec![2]);
        assert_eq!(l.select(LineSel::Number(3)), Vec::<usize>::new());
    }
}
