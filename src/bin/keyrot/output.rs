//! How `keyrot` prints: tables for people, JSON for scripts (streamed, so that
//! memory does not grow with the account), CSV for spreadsheets, a progress
//! bar on a terminal, and what could not be read, on stderr. Each command's
//! own table is in its module; the machinery they share is here.
//!
//! Everything goes through [`out`] and [`err`]: a reader that closes the pipe
//! (`keyrot audit | head`) ends keyrot at once and quietly, with exit code 0
//! (the reader had what it wanted), never a panic; a closed stderr is ignored.

use std::collections::HashMap;
use std::fmt;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Mutex;

use clap::ValueEnum;
use comfy_table::{Table, presets};
use iam_key_rotation::report::Member;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::FAILURE;

/// `--output`: human tables, JSON for scripts, or CSV for a spreadsheet (on
/// stdout only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// Writes to stdout; a closed pipe ends the process quietly.
pub fn out(args: fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout.write_fmt(args) {
        output_failed(&error);
    }
}

/// Flushes stdout before the process ends, so that a closed pipe is noticed
/// (and ignored) here rather than in the runtime's exit.
pub fn flush() {
    if let Err(error) = std::io::stdout().lock().flush() {
        output_failed(&error);
    }
}

fn output_failed(error: &std::io::Error) -> ! {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    err(format_args!("keyrot: cannot write the output: {error}\n"));
    std::process::exit(i32::from(FAILURE));
}

/// Writes to stderr; a closed stderr leaves nowhere to say anything.
pub fn err(args: fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// `println!` through [`out`].
macro_rules! outln {
    () => { $crate::output::out(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::out(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `eprintln!` through [`err`].
macro_rules! errln {
    ($($arg:tt)*) => { $crate::output::err(format_args!("{}\n", format_args!($($arg)*))) };
}

impl Format {
    /// A progress bar only for a person watching tables on a terminal.
    pub fn shows_progress(self) -> bool {
        self == Self::Table && std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
    }
}

pub fn print_json(value: &impl Serialize) {
    outln!(
        "{}",
        serde_json::to_string_pretty(value).expect("plain data serializes")
    );
}

/// Rows as CSV with a header line (the fields in their declared order), for a
/// spreadsheet: a row's fields must be plain values.
pub fn print_csv<T: Serialize>(rows: &[T]) {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer.serialize(row).expect("plain rows serialize as CSV");
    }
    print_csv_bytes(writer);
}

/// Records of strings as CSV: `header`, then `records`.
pub fn print_csv_records(header: &[&str], records: impl IntoIterator<Item = Vec<String>>) {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(header).expect("in memory");
    for record in records {
        writer.write_record(&record).expect("in memory");
    }
    print_csv_bytes(writer);
}

fn print_csv_bytes(writer: csv::Writer<Vec<u8>>) {
    let bytes = writer.into_inner().expect("in memory");
    out(format_args!("{}", String::from_utf8_lossy(&bytes)));
}

/// Names on stderr what could not be read; an access error is exit code 2.
pub fn report_unreadable(what: &str, unreadable: &[String]) -> ExitCode {
    if unreadable.is_empty() {
        return ExitCode::SUCCESS;
    }
    errln!(
        "keyrot: {} {what} could not be read and are left out:",
        unreadable.len()
    );
    for line in unreadable {
        errln!("  {line}");
    }
    ExitCode::from(FAILURE)
}

/// A spinner with a count on stderr, or nothing.
pub struct Progress(Option<ProgressBar>);

impl Progress {
    pub fn new(show: bool, what: &'static str) -> Self {
        Self(show.then(|| {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {pos} {msg} ({elapsed})")
                    .expect("a valid template"),
            );
            bar.set_message(what);
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        }))
    }

    pub fn inc(&self, n: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(n);
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// One spinner per account on stderr (`keyrot audit --org`), or nothing.
pub struct AccountProgress {
    bars: Option<(MultiProgress, Mutex<HashMap<String, ProgressBar>>)>,
}

impl AccountProgress {
    pub fn new(show: bool) -> Self {
        Self {
            bars: show.then(|| (MultiProgress::new(), Mutex::new(HashMap::new()))),
        }
    }

    pub fn inc(&self, member: &Member, n: u64) {
        let Some((multi, bars)) = &self.bars else {
            return;
        };
        let mut bars = bars.lock().expect("progress");
        let bar = bars.entry(member.account.clone()).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix}: {pos} users read ({elapsed})")
                    .expect("a valid template"),
            );
            bar.set_prefix(match &member.name {
                Some(name) => format!("{} ({name})", member.account),
                None => member.account.clone(),
            });
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        bar.inc(n);
    }

    pub fn finish(&self) {
        if let Some((multi, _)) = &self.bars {
            let _ = multi.clear();
        }
    }
}

pub fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_style(presets::NOTHING)
        .set_header(header.to_vec());
    table
}

/// `2026-11-29T01:02:03Z` as `2026-11-29 01:02`, and `-` for none.
pub fn when(time: &Option<String>) -> String {
    match time {
        Some(time) => time.get(..16).unwrap_or(time).replace('T', " "),
        None => "-".to_string(),
    }
}

pub fn days(age: Option<f64>) -> String {
    age.map(|d| format!("{d:.1}")).unwrap_or_else(|| "-".into())
}

/// Items printed as the elements of a JSON array as they come, so that memory
/// does not grow with the account, or kept for a table printed at the end.
pub struct Streamed<T> {
    json: bool,
    first: bool,
    rows: Vec<T>,
}

impl<T: Serialize> Streamed<T> {
    /// Prints `opening` (which ends with the array's `[`) in JSON.
    pub fn new(format: Format, opening: &str) -> Self {
        let json = format == Format::Json;
        if json {
            out(format_args!("{opening}"));
        }
        Self {
            json,
            first: true,
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, item: T) {
        if !self.json {
            self.rows.push(item);
            return;
        }
        let separator = if self.first { "\n  " } else { ",\n  " };
        out(format_args!(
            "{separator}{}",
            serde_json::to_string(&item).expect("plain data")
        ));
        self.first = false;
    }

    /// Closes the JSON array and returns `None` (the caller prints what
    /// follows it), or, for a table or CSV, the rows kept.
    pub fn finish(self) -> Option<Vec<T>> {
        if self.json {
            out(format_args!("{}]", if self.first { "" } else { "\n" }));
            return None;
        }
        Some(self.rows)
    }
}
