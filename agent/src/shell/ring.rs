//! The output a session keeps for replay: the last [`RING_CAPACITY`] bytes,
//! always, whether or not a browser is attached.

/// How much shell output a session keeps for a reattaching browser.
pub const RING_CAPACITY: usize = 256 * 1024;

#[derive(Debug)]
pub struct Ring {
    buf: Box<[u8]>,
    /// Index of the oldest byte.
    start: usize,
    len: usize,
}

impl Ring {
    pub fn new(capacity: usize) -> Self {
        Self {
            buf: vec![0; capacity.max(1)].into_boxed_slice(),
            start: 0,
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `data`, dropping the oldest bytes beyond the capacity.
    pub fn push(&mut self, data: &[u8]) {
        let cap = self.buf.len();
        let data = &data[data.len().saturating_sub(cap)..];
        let end = (self.start + self.len) % cap;
        let first = data.len().min(cap - end);
        self.buf[end..end + first].copy_from_slice(&data[..first]);
        self.buf[..data.len() - first].copy_from_slice(&data[first..]);
        let total = self.len + data.len();
        if total > cap {
            self.start = (self.start + total - cap) % cap;
            self.len = cap;
        } else {
            self.len = total;
        }
    }

    /// The kept bytes, oldest first, as (at most) two slices.
    pub fn as_slices(&self) -> (&[u8], &[u8]) {
        let cap = self.buf.len();
        let first = self.len.min(cap - self.start);
        (
            &self.buf[self.start..self.start + first],
            &self.buf[..self.len - first],
        )
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let (a, b) = self.as_slices();
        [a, b].concat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_bytes_across_wraps() {
        let mut ring = Ring::new(8);
        assert!(ring.is_empty());
        ring.push(b"abc");
        assert_eq!(ring.to_vec(), b"abc");
        ring.push(b"defgh");
        assert_eq!(ring.to_vec(), b"abcdefgh");
        ring.push(b"ij");
        assert_eq!(ring.to_vec(), b"cdefghij");
        ring.push(b"klmnopqrstu");
        assert_eq!(ring.to_vec(), b"nopqrstu");
        assert_eq!(ring.len(), 8);
        ring.push(b"");
        assert_eq!(ring.to_vec(), b"nopqrstu");
    }

    #[test]
    fn matches_a_naive_model() {
        let mut ring = Ring::new(37);
        let mut model: Vec<u8> = Vec::new();
        let mut next = 0u8;
        for round in 0..200usize {
            let chunk: Vec<u8> = (0..(round * 7) % 50)
                .map(|_| {
                    next = next.wrapping_add(1);
                    next
                })
                .collect();
            ring.push(&chunk);
            model.extend_from_slice(&chunk);
            let keep = model.len().saturating_sub(37);
            model.drain(..keep);
            assert_eq!(ring.to_vec(), model, "round {round}");
        }
    }
}
