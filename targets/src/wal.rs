//! A write-ahead log of JSON-line records.
//!
//! One record per line. `append` buffers, `sync` writes and fsyncs once for the whole batch (group
//! commit), `compact` atomically replaces the log (temp file, fsync, rename, fsync of the directory).
//! On open, every complete line is read back; a torn last line (a crash in the middle of a write)
//! is dropped and cut off the file, while an unreadable line in the middle is corruption and an error.
use serde::{de::DeserializeOwned, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

const LOG_NAME: &str = "wal.log";
const TEMP_NAME: &str = "wal.log.tmp";

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{path}:{line}: corrupt record: {message}")]
    Corrupt {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: cannot encode record: {message}")]
    Encode { path: PathBuf, message: String },
}

/// An open write-ahead log holding records of type `R`.
pub struct Wal<R> {
    dir: PathBuf,
    file: File,
    /// Encoded records not yet written.
    pending: Vec<u8>,
    _records: PhantomData<fn(R) -> R>,
}

impl<R: Serialize + DeserializeOwned> Wal<R> {
    /// Opens (creating if needed) the log in `dir` and returns it with every complete record.
    pub fn open(dir: &Path) -> Result<(Self, Vec<R>), WalError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| WalError::Io { path, source }
        };
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let path = dir.join(LOG_NAME);
        // A temp file left by a crash during compaction was never renamed: the old log is intact.
        let _ = fs::remove_file(dir.join(TEMP_NAME));
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let (records, good_len) = read_records(&path, &file)?;
        let len = file.metadata().map_err(io_err(&path))?.len();
        if good_len < len {
            tracing::warn!(
                path = %path.display(),
                dropped_bytes = len - good_len,
                "dropping a torn last record"
            );
            file.set_len(good_len).map_err(io_err(&path))?;
            file.sync_all().map_err(io_err(&path))?;
        }
        Ok((
            Wal {
                dir: dir.to_path_buf(),
                file,
                pending: Vec::new(),
                _records: PhantomData,
            },
            records,
        ))
    }

    fn path(&self) -> PathBuf {
        self.dir.join(LOG_NAME)
    }

    /// Buffers records; nothing is durable until [`Wal::sync`].
    pub fn append(&mut self, records: &[R]) -> Result<(), WalError> {
        for r in records {
            serde_json::to_writer(&mut self.pending, r).map_err(|e| WalError::Encode {
                path: self.path(),
                message: e.to_string(),
            })?;
            self.pending.push(b'\n');
        }
        Ok(())
    }

    /// Writes buffered records and fsyncs them (one fsync for the batch). A no-op if nothing is
    /// buffered.
    pub fn sync(&mut self) -> Result<(), WalError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let path = self.path();
        self.file
            .write_all(&self.pending)
            .and_then(|_| self.file.sync_data())
            .map_err(|source| WalError::Io { path, source })?;
        self.pending.clear();
        Ok(())
    }

    /// Atomically replaces the whole log with `records` (buffered appends are written first and
    /// then superseded, so call order is preserved).
    pub fn compact(&mut self, records: &[R]) -> Result<(), WalError> {
        self.pending.clear();
        let tmp = self.dir.join(TEMP_NAME);
        let path = self.path();
        let io_err = |p: &Path| {
            let path = p.to_path_buf();
            move |source| WalError::Io { path, source }
        };
        let mut buf = Vec::new();
        for r in records {
            serde_json::to_writer(&mut buf, r).map_err(|e| WalError::Encode {
                path: tmp.clone(),
                message: e.to_string(),
            })?;
            buf.push(b'\n');
        }
        {
            let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
            f.write_all(&buf).map_err(io_err(&tmp))?;
            f.sync_all().map_err(io_err(&tmp))?;
        }
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(&self.dir))?;
        self.file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        Ok(())
    }
}

/// Reads complete records; returns them and the byte length of the well-formed prefix.
fn read_records<R: DeserializeOwned>(path: &Path, file: &File) -> Result<(Vec<R>, u64), WalError> {
    let mut reader = BufReader::new(file);
    let mut records = Vec::new();
    let mut good_len = 0u64;
    let mut line = Vec::new();
    let mut line_no = 0usize;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|source| WalError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        if n == 0 {
            break;
        }
        line_no += 1;
        if line.last() != Some(&b'\n') {
            // The last write was cut short by a crash.
            break;
        }
        match serde_json::from_slice::<R>(&line[..line.len() - 1]) {
            Ok(r) => records.push(r),
            Err(e) => {
                // A complete but unreadable line is only tolerable if nothing follows it.
                let mut rest = Vec::new();
                io::Read::read_to_end(&mut reader, &mut rest).map_err(|source| WalError::Io {
                    path: path.to_path_buf(),
                    source,
                })?;
                if rest.is_empty() {
                    break;
                }
                return Err(WalError::Corrupt {
                    path: path.to_path_buf(),
                    line: line_no,
                    message: e.to_string(),
                });
            }
        }
        good_len += n as u64;
    }
    Ok((records, good_len))
}

/// Measures the cost of one small append + fsync in `dir` (for benchmarks), in microseconds:
/// returns the median of `rounds` samples.
pub fn measure_fsync_us(dir: &Path, rounds: usize) -> io::Result<u64> {
    fs::create_dir_all(dir)?;
    let path = dir.join("fsync-probe");
    let mut f = OpenOptions::new().create(true).append(true).open(&path)?;
    let mut samples = Vec::with_capacity(rounds);
    for i in 0..rounds.max(1) {
        let start = std::time::Instant::now();
        writeln!(f, "{{\"probe\":{i}}}")?;
        f.sync_data()?;
        samples.push(start.elapsed().as_micros() as u64);
    }
    let _ = fs::remove_file(&path);
    samples.sort_unstable();
    Ok(samples[samples.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("faultline-wal-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn appends_survive_reopen_and_torn_tail_is_dropped() {
        let dir = tempdir("torn");
        {
            let (mut wal, recs) = Wal::<u64>::open(&dir).unwrap();
            assert!(recs.is_empty());
            wal.append(&[1, 2]).unwrap();
            wal.sync().unwrap();
            wal.append(&[3]).unwrap();
            wal.sync().unwrap();
        }
        // Simulate a crash mid-write: half a record at the end.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.join(LOG_NAME))
            .unwrap();
        f.write_all(b"12").unwrap();
        drop(f);
        let (mut wal, recs) = Wal::<u64>::open(&dir).unwrap();
        assert_eq!(recs, vec![1, 2, 3]);
        wal.append(&[4]).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let (_, recs) = Wal::<u64>::open(&dir).unwrap();
        assert_eq!(
            recs,
            vec![1, 2, 3, 4],
            "the torn bytes must not glue onto record 4"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn compact_replaces_the_log() {
        let dir = tempdir("compact");
        let (mut wal, _) = Wal::<String>::open(&dir).unwrap();
        wal.append(&["a".into(), "b".into()]).unwrap();
        wal.sync().unwrap();
        wal.compact(&["snap".into()]).unwrap();
        wal.append(&["c".into()]).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let (_, recs) = Wal::<String>::open(&dir).unwrap();
        assert_eq!(recs, vec!["snap".to_string(), "c".to_string()]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn corruption_in_the_middle_is_an_error_naming_the_line() {
        let dir = tempdir("corrupt");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(LOG_NAME), "1\nxx\n3\n").unwrap();
        let err = Wal::<u64>::open(&dir).err().expect("must fail");
        assert!(err.to_string().contains("wal.log:2:"), "{err}");
        let _ = fs::remove_dir_all(&dir);
    }
}
