//! Keyboard input for the event loop, read straight from the terminal.
//!
//! crossterm's reader retries a failing read forever: once the terminal hangs
//! up (tmux kill-session, a dropped SSH link) a read returns EOF or EIO at
//! once, and `event::poll` spins on it at full speed without ever returning,
//! so neither a key nor a signal can end the dashboard. This reader waits with
//! poll(2), and reports end of input, a hangup and read errors as
//! `Input::Closed`, so the loop can restore what it can and leave.

use std::collections::VecDeque;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// One outcome of waiting for input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Key(KeyEvent),
    /// The terminal changed size.
    Resize,
    /// Nothing arrived before the timeout, or a signal cut the wait short.
    Idle,
    /// The input is gone for good (end of file, hangup, read error): why.
    Closed(String),
}

/// Where the event loop gets its keys: the terminal, or a script in tests.
pub trait InputSource {
    /// Waits at most `timeout` for the next input.
    fn next(&mut self, timeout: Duration) -> Input;
}

/// Turns the bytes a terminal sends in raw mode into key events: printable
/// and UTF-8 characters, control keys, and the xterm/VT sequences for arrows,
/// Home/End, PageUp/PageDown, Insert/Delete and Shift-Tab. Unknown sequences
/// are dropped whole, so they never turn into stray keys.
#[derive(Debug, Default)]
pub struct KeyParser {
    pending: Vec<u8>,
    keys: VecDeque<KeyEvent>,
}

enum Step {
    Key(KeyEvent, usize),
    Skip(usize),
    Incomplete,
}

/// Longer than any sequence the parser knows: a run of parameter bytes this
/// long without a final byte is garbage, not a sequence still arriving.
const MAX_SEQUENCE: usize = 32;

impl KeyParser {
    /// Adds one read's bytes. A terminal writes each sequence in one go, so
    /// an ESC that ends a read is the Esc key, not the start of a sequence.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        let mut used = 0;
        while used < self.pending.len() {
            match decode(&self.pending[used..]) {
                Step::Key(k, n) => {
                    self.keys.push_back(k);
                    used += n;
                }
                Step::Skip(n) => used += n,
                Step::Incomplete => break,
            }
        }
        self.pending.drain(..used);
    }

    pub fn next_key(&mut self) -> Option<KeyEvent> {
        self.keys.pop_front()
    }

    /// Drops a sequence that never completed (called when input went quiet).
    pub fn clear_pending(&mut self) {
        self.pending.clear();
    }
}

fn key(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
    KeyEvent::new(code, mods)
}

fn decode(s: &[u8]) -> Step {
    let b = s[0];
    match b {
        0x1b => decode_escape(s),
        b'\r' | b'\n' => Step::Key(key(KeyCode::Enter, KeyModifiers::NONE), 1),
        b'\t' => Step::Key(key(KeyCode::Tab, KeyModifiers::NONE), 1),
        0x7f | 0x08 => Step::Key(key(KeyCode::Backspace, KeyModifiers::NONE), 1),
        0x01..=0x1a => Step::Key(
            key(KeyCode::Char((b'a' + b - 1) as char), KeyModifiers::CONTROL),
            1,
        ),
        0x00 | 0x1c..=0x1f => Step::Skip(1),
        0x20..=0x7e => Step::Key(char_key(b as char, KeyModifiers::NONE), 1),
        _ => decode_utf8(s, KeyModifiers::NONE, 0),
    }
}

/// Uppercase letters carry SHIFT, as crossterm reports them.
fn char_key(c: char, mods: KeyModifiers) -> KeyEvent {
    let mods = if c.is_uppercase() {
        mods | KeyModifiers::SHIFT
    } else {
        mods
    };
    key(KeyCode::Char(c), mods)
}

fn decode_utf8(s: &[u8], mods: KeyModifiers, offset: usize) -> Step {
    let len = match s[offset] {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => return Step::Skip(offset + 1),
    };
    if s.len() < offset + len {
        return Step::Incomplete;
    }
    match std::str::from_utf8(&s[offset..offset + len])
        .ok()
        .and_then(|t| t.chars().next())
    {
        Some(c) => Step::Key(char_key(c, mods), offset + len),
        None => Step::Skip(offset + 1),
    }
}

fn decode_escape(s: &[u8]) -> Step {
    let esc = || Step::Key(key(KeyCode::Esc, KeyModifiers::NONE), 1);
    match s.get(1) {
        None | Some(0x1b) => esc(),
        Some(b'[') => decode_csi(s),
        Some(b'O') => match s.get(2) {
            None => Step::Incomplete,
            Some(&f) => match final_key(f) {
                Some(code) => Step::Key(key(code, KeyModifiers::NONE), 3),
                None => Step::Skip(3),
            },
        },
        // Alt+key arrives as ESC then the key.
        Some(&c @ 0x20..=0x7e) => Step::Key(char_key(c as char, KeyModifiers::ALT), 2),
        Some(&c) if c >= 0x80 => decode_utf8(s, KeyModifiers::ALT, 1),
        Some(_) => esc(),
    }
}

/// Keys named by a sequence's final byte alone (CSI and SS3 forms).
fn final_key(f: u8) -> Option<KeyCode> {
    Some(match f {
        b'A' => KeyCode::Up,
        b'B' => KeyCode::Down,
        b'C' => KeyCode::Right,
        b'D' => KeyCode::Left,
        b'H' => KeyCode::Home,
        b'F' => KeyCode::End,
        _ => return None,
    })
}

/// `ESC [ params final`; parameters `n;m` where m-1 holds the modifier bits
/// (1 shift, 2 alt, 4 ctrl).
fn decode_csi(s: &[u8]) -> Step {
    let mut end = None;
    for (i, &c) in s.iter().enumerate().skip(2) {
        match c {
            0x20..=0x3f => {}
            0x40..=0x7e => {
                end = Some(i);
                break;
            }
            // Not a sequence byte: drop what came before it.
            _ => return Step::Skip(i),
        }
    }
    let Some(end) = end else {
        return if s.len() > MAX_SEQUENCE {
            Step::Skip(s.len())
        } else {
            Step::Incomplete
        };
    };
    let used = end + 1;
    let params: Vec<u32> = std::str::from_utf8(&s[2..end])
        .unwrap_or("")
        .split(';')
        .map(|p| p.parse().unwrap_or(0))
        .collect();
    let mut mods = KeyModifiers::NONE;
    if let Some(&m) = params.get(1) {
        let bits = m.saturating_sub(1);
        if bits & 1 != 0 {
            mods |= KeyModifiers::SHIFT;
        }
        if bits & 2 != 0 {
            mods |= KeyModifiers::ALT;
        }
        if bits & 4 != 0 {
            mods |= KeyModifiers::CONTROL;
        }
    }
    let code = match s[end] {
        b'Z' => Some(KeyCode::BackTab),
        b'~' => match params.first().copied().unwrap_or(0) {
            1 | 7 => Some(KeyCode::Home),
            2 => Some(KeyCode::Insert),
            3 => Some(KeyCode::Delete),
            4 | 8 => Some(KeyCode::End),
            5 => Some(KeyCode::PageUp),
            6 => Some(KeyCode::PageDown),
            _ => None,
        },
        f => final_key(f),
    };
    match code {
        Some(KeyCode::BackTab) => Step::Key(key(KeyCode::BackTab, KeyModifiers::SHIFT), used),
        Some(code) => Step::Key(key(code, mods), used),
        None => Step::Skip(used),
    }
}

#[cfg(unix)]
pub use tty::TtyInput;

/// crossterm's reader, where there is no file descriptor to poll (Windows
/// consoles do not hang up like a Unix terminal).
#[cfg(not(unix))]
pub struct CrosstermInput;

#[cfg(not(unix))]
impl InputSource for CrosstermInput {
    fn next(&mut self, timeout: Duration) -> Input {
        use crossterm::event::{self, Event};
        match event::poll(timeout).and_then(|ready| ready.then(event::read).transpose()) {
            Ok(None) => Input::Idle,
            Ok(Some(Event::Key(k))) => Input::Key(k),
            Ok(Some(Event::Resize(_, _))) => Input::Resize,
            Ok(Some(_)) => Input::Idle,
            Err(e) => Input::Closed(format!("reading the console: {e}")),
        }
    }
}

#[cfg(unix)]
mod tty {
    use std::fs::OpenOptions;
    use std::io;
    use std::os::fd::{AsRawFd, OwnedFd, RawFd};
    use std::time::Duration;

    use super::{Input, InputSource, KeyParser};

    /// Keys from the controlling terminal (standard input when it is one,
    /// else /dev/tty, as crossterm picks).
    pub struct TtyInput {
        fd: RawFd,
        _owned: Option<OwnedFd>,
        keys: KeyParser,
        size: Option<(u16, u16)>,
    }

    impl TtyInput {
        pub fn open() -> io::Result<TtyInput> {
            // SAFETY: isatty only inspects the descriptor.
            if unsafe { libc::isatty(libc::STDIN_FILENO) } == 1 {
                return Ok(TtyInput::with_fd(libc::STDIN_FILENO, None));
            }
            let tty = OpenOptions::new().read(true).write(true).open("/dev/tty")?;
            let owned = OwnedFd::from(tty);
            Ok(TtyInput::with_fd(owned.as_raw_fd(), Some(owned)))
        }

        /// Reads from `fd` (a pipe or a pseudo-terminal in tests).
        pub fn from_fd(fd: OwnedFd) -> TtyInput {
            let raw = fd.as_raw_fd();
            TtyInput::with_fd(raw, Some(fd))
        }

        fn with_fd(fd: RawFd, owned: Option<OwnedFd>) -> TtyInput {
            let mut input = TtyInput {
                fd,
                _owned: owned,
                keys: KeyParser::default(),
                size: None,
            };
            input.size = input.window_size();
            input
        }

        /// The window size by ioctl on the input descriptor; None when it is
        /// not a terminal. (crossterm's `size()` may start `tput` instead.)
        fn window_size(&self) -> Option<(u16, u16)> {
            let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
            // SAFETY: TIOCGWINSZ writes one winsize into `ws`.
            let rc = unsafe { libc::ioctl(self.fd, libc::TIOCGWINSZ, &mut ws) };
            (rc == 0).then_some((ws.ws_col, ws.ws_row))
        }

        fn resized(&mut self) -> bool {
            let now = self.window_size();
            if now.is_some() && now != self.size {
                self.size = now;
                return true;
            }
            false
        }
    }

    impl InputSource for TtyInput {
        fn next(&mut self, timeout: Duration) -> Input {
            if let Some(k) = self.keys.next_key() {
                return Input::Key(k);
            }
            let mut pfd = libc::pollfd {
                fd: self.fd,
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, ms) };
            if n < 0 {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    io::ErrorKind::Interrupted => Input::Idle,
                    _ => Input::Closed(format!("waiting for terminal input: {e}")),
                };
            }
            if n == 0 {
                self.keys.clear_pending();
                return if self.resized() {
                    Input::Resize
                } else {
                    Input::Idle
                };
            }
            if pfd.revents & libc::POLLNVAL != 0 {
                return Input::Closed("the terminal input is not open".into());
            }
            // A hangup or error may still leave typed bytes to read; the read
            // after them returns 0 or fails, which closes the input below.
            let mut buf = [0u8; 1024];
            // SAFETY: reads at most buf.len() bytes into buf.
            let r = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) };
            if r == 0 {
                return Input::Closed("end of input: the terminal hung up".into());
            }
            if r < 0 {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock => Input::Idle,
                    _ => Input::Closed(format!("reading the terminal: {e}")),
                };
            }
            self.keys.feed(&buf[..r as usize]);
            match self.keys.next_key() {
                Some(k) => Input::Key(k),
                None => Input::Idle,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(bytes: &[u8]) -> Vec<KeyEvent> {
        let mut p = KeyParser::default();
        p.feed(bytes);
        std::iter::from_fn(|| p.next_key()).collect()
    }

    fn plain(code: KeyCode) -> KeyEvent {
        key(code, KeyModifiers::NONE)
    }

    #[test]
    fn plain_and_control_bytes() {
        assert_eq!(
            keys(b"?q\r\t\x7f\x03"),
            vec![
                plain(KeyCode::Char('?')),
                plain(KeyCode::Char('q')),
                plain(KeyCode::Enter),
                plain(KeyCode::Tab),
                plain(KeyCode::Backspace),
                key(KeyCode::Char('c'), KeyModifiers::CONTROL),
            ]
        );
        assert_eq!(
            keys(b"G"),
            vec![key(KeyCode::Char('G'), KeyModifiers::SHIFT)]
        );
    }

    #[test]
    fn escape_sequences() {
        assert_eq!(
            keys(b"\x1b[A\x1b[B\x1bOC\x1b[D\x1b[5~\x1b[6~\x1b[H\x1b[4~\x1b[Z"),
            vec![
                plain(KeyCode::Up),
                plain(KeyCode::Down),
                plain(KeyCode::Right),
                plain(KeyCode::Left),
                plain(KeyCode::PageUp),
                plain(KeyCode::PageDown),
                plain(KeyCode::Home),
                plain(KeyCode::End),
                key(KeyCode::BackTab, KeyModifiers::SHIFT),
            ]
        );
        assert_eq!(
            keys(b"\x1b[1;5A"),
            vec![key(KeyCode::Up, KeyModifiers::CONTROL)]
        );
    }

    #[test]
    fn lone_escape_is_the_esc_key_and_unknown_sequences_vanish() {
        assert_eq!(keys(b"\x1b"), vec![plain(KeyCode::Esc)]);
        assert_eq!(keys(b"\x1b[99xq"), vec![plain(KeyCode::Char('q'))]);
        assert_eq!(
            keys(b"\x1bx"),
            vec![key(KeyCode::Char('x'), KeyModifiers::ALT)]
        );
    }

    #[test]
    fn utf8_and_split_sequences() {
        assert_eq!(keys("é".as_bytes()), vec![plain(KeyCode::Char('é'))]);
        let mut p = KeyParser::default();
        p.feed(b"\x1b[");
        assert_eq!(p.next_key(), None);
        p.feed(b"6~");
        assert_eq!(p.next_key(), Some(plain(KeyCode::PageDown)));
        let mut p = KeyParser::default();
        p.feed(&"ü".as_bytes()[..1]);
        assert_eq!(p.next_key(), None);
        p.feed(&"ü".as_bytes()[1..]);
        assert_eq!(p.next_key(), Some(plain(KeyCode::Char('ü'))));
    }
}
