//! Interning of keys and values so the hot loops compare `u32`s instead of JSON trees.
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::history::Value;

/// A fast, non-cryptographic hasher for small integer keys (histories are not adversarial input
/// to a hash table: a slow path here would only slow the checker down).
#[derive(Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        // A final avalanche so that sequential integers spread over the table.
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    fn write_i64(&mut self, i: i64) {
        self.write_u64(i as u64);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
}

pub(crate) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

pub(crate) fn fast_map<K, V>(capacity: usize) -> FastMap<K, V> {
    FastMap::with_capacity_and_hasher(capacity, Default::default())
}

/// Packs a (key, element) pair into one map key.
pub(crate) fn pair(key: u32, elem: u32) -> u64 {
    (u64::from(key) << 32) | u64::from(elem)
}

#[derive(PartialEq, Eq, Hash)]
enum AtomKey {
    Int(i64),
    /// Any other JSON value, by its canonical serialisation (serde_json sorts object keys).
    Other(String),
}

/// Maps JSON values to dense ids and back.
#[derive(Default)]
pub(crate) struct Atoms {
    ids: FastMap<AtomKey, u32>,
    values: Vec<Value>,
}

impl Atoms {
    pub(crate) fn intern(&mut self, v: &Value) -> u32 {
        let key = match v.as_i64() {
            Some(i) => AtomKey::Int(i),
            None => AtomKey::Other(v.to_string()),
        };
        let next = self.values.len() as u32;
        let id = *self.ids.entry(key).or_insert(next);
        if id == next {
            self.values.push(v.clone());
        }
        id
    }

    pub(crate) fn value(&self, id: u32) -> &Value {
        &self.values[id as usize]
    }

    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }
}

/// Ids below this are small non-negative integers standing for themselves.
const DIRECT: u64 = 1 << 31;

/// Maps element values to ids without hashing the common case: a small non-negative integer is
/// its own id; anything else is interned with an id of at least 2^31.
#[derive(Default)]
pub(crate) struct Elements {
    others: Atoms,
}

impl Elements {
    pub(crate) fn intern(&mut self, v: &Value) -> u32 {
        match v.as_u64() {
            Some(i) if i < DIRECT => i as u32,
            _ => DIRECT as u32 + self.others.intern(v),
        }
    }

    pub(crate) fn value(&self, id: u32) -> Value {
        if u64::from(id) < DIRECT {
            Value::from(id)
        } else {
            self.others.value(id - DIRECT as u32).clone()
        }
    }
}
