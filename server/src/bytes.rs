//! Reading bytes that come from outside (an agent's counters, a stored row): every length is
//! checked against what is left before anything is taken, and every failure names its
//! offset. The `LCC1` counters (`lcc.rs`) and the `LCM1` metadata (`lcm.rs`) both read so,
//! each with its own error type ([`Fault`]).

/// An error at an offset of the bytes being read.
pub trait Fault {
    fn at(offset: usize, what: String) -> Self;
}

/// A cursor over untrusted bytes.
pub struct Reader<'a, E> {
    pub buf: &'a [u8],
    pub pos: usize,
    error: std::marker::PhantomData<E>,
}

impl<'a, E: Fault> Reader<'a, E> {
    pub fn new(buf: &'a [u8], pos: usize) -> Self {
        Reader {
            buf,
            pos,
            error: std::marker::PhantomData,
        }
    }

    /// An error at the current offset.
    pub fn fail<T>(&self, what: impl Into<String>) -> Result<T, E> {
        Err(E::at(self.pos, what.into()))
    }

    pub fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], E> {
        if n > self.left() {
            return self.fail(format!("{n} bytes announced, {} left", self.left()));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn byte(&mut self) -> Result<u8, E> {
        Ok(self.take(1)?[0])
    }

    /// An unsigned LEB128 varint, as Go's `encoding/binary` writes it: at most 10 bytes, and
    /// no more than 64 bits.
    #[inline]
    pub fn uvarint(&mut self) -> Result<u64, E> {
        // Most values fit in one byte.
        if let Some(&b) = self.buf.get(self.pos)
            && b < 0x80
        {
            self.pos += 1;
            return Ok(u64::from(b));
        }
        let mut x: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return self.fail("truncated varint");
            };
            self.pos += 1;
            if i == 9 && b > 1 {
                return self.fail("varint overflows 64 bits");
            }
            x |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(x);
            }
        }
        self.fail("varint longer than 10 bytes")
    }
}
