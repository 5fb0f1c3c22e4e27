//! How `keyrot` prints: tables for people, JSON for scripts (streamed, so that
//! memory does not grow with the account), a progress bar on a terminal, and
//! what could not be read, on stderr. Each command's own table is in its
//! module; the machinery they share is here.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Mutex;

use clap::ValueEnum;
use comfy_table::{Table, presets};
use iam_key_rotation::report::Member;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::FAILURE;

/// `--output`: human tables, or JSON for scripts (on stdout only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

impl Format {
    /// A progress bar only for a person watching tables on a terminal.
    pub fn shows_progress(self) -> bool {
        self == Self::Table && std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
    }
}

pub fn print_json(value: &impl Serialize) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("plain data serializes")
    );
}

/// Names on stderr what could not be read; an access error is exit code 2.
pub fn report_unreadable(what: &str, unreadable: &[String]) -> ExitCode {
    if unreadable.is_empty() {
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "keyrot: {} {what} could not be read and are left out:",
        unreadable.len()
    );
    for line in unreadable {
        eprintln!("  {line}");
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
            print!("{opening}");
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
        print!(
            "{separator}{}",
            serde_json::to_string(&item).expect("plain data")
        );
        self.first = false;
    }

    /// Closes the JSON array and returns `None` (the caller prints what
    /// follows it), or, for a table, the rows kept.
    pub fn finish(self) -> Option<Vec<T>> {
        if self.json {
            print!("{}]", if self.first { "" } else { "\n" });
            return None;
        }
        Some(self.rows)
    }
}
