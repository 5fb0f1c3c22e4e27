//! The current-since record: the reserved user tag
//! `iam-key-rotation:current-since` = `<version> <unix seconds>[ <rollback
//! stage>]`, when `AWSCURRENT` last moved and to which version (SPEC 11, T6).
//! The sweep's grace clock starts there: a version's creation date says
//! nothing of a rollback or a stage moved by hand.
//!
//! Written by finishSecret (the move), the sweep (a move it sees without a
//! record, timed at that sweep) and `keyrot rollback` (with how far it got);
//! read by the sweep, the audit's grace pairs, `keyrot status` and `keyrot
//! rollback`. One writer ([`CurrentSince::to_tag_value`]) and one parser.

use crate::model::user::IamUser;

/// The user tag that records when `AWSCURRENT` last moved.
pub const CURRENT_SINCE_TAG: &str = "iam-key-rotation:current-since";

/// How far a `keyrot rollback` got, as its record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollbackStage {
    /// Written just before `AWSCURRENT` moved back.
    Started,
    /// The event was put too.
    Done,
}

impl RollbackStage {
    fn as_str(self) -> &'static str {
        match self {
            Self::Started => "rollback",
            Self::Done => "rolled-back",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        [Self::Started, Self::Done]
            .into_iter()
            .find(|stage| stage.as_str() == word)
    }
}

/// When `AWSCURRENT` moved to `version`, and whether a rollback moved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentSince {
    pub version: String,
    /// Seconds since the epoch.
    pub at: i64,
    pub rollback: Option<RollbackStage>,
}

impl CurrentSince {
    /// `AWSCURRENT` moved to `version` at `at` (a rotation, or a move seen).
    pub fn moved(version: &str, at: i64) -> Self {
        Self {
            version: version.to_string(),
            at,
            rollback: None,
        }
    }

    /// A rollback moved (or is about to move) `AWSCURRENT` back to `version`.
    pub fn rolled_back(version: &str, at: i64, stage: RollbackStage) -> Self {
        Self {
            rollback: Some(stage),
            ..Self::moved(version, at)
        }
    }

    pub fn to_tag_value(&self) -> String {
        match self.rollback {
            None => format!("{} {}", self.version, self.at),
            Some(stage) => format!("{} {} {}", self.version, self.at, stage.as_str()),
        }
    }

    fn parse(value: &str) -> Option<Self> {
        let mut parts = value.split_whitespace();
        let version = parts.next()?.to_string();
        let at = parts.next()?.parse().ok()?;
        Some(Self {
            version,
            at,
            rollback: parts.next().and_then(RollbackStage::parse),
        })
    }

    /// The record's time, if it is about `version`.
    pub fn at_if_about(&self, version: &str) -> Option<i64> {
        (self.version == version).then_some(self.at)
    }
}

impl IamUser {
    /// When `AWSCURRENT` last moved, as recorded.
    pub fn current_since(&self) -> Option<CurrentSince> {
        CurrentSince::parse(self.tags.get(CURRENT_SINCE_TAG)?)
    }

    /// The version `keyrot rollback` moved (or was about to move) `AWSCURRENT`
    /// back to, and how far it got.
    pub fn rollback_record(&self) -> Option<(String, RollbackStage)> {
        let record = self.current_since()?;
        Some((record.version, record.rollback?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_a_rollbacks_stage_is_read_back() {
        for record in [
            CurrentSince::moved("v2", 1_800_000_000),
            CurrentSince::rolled_back("v1", 1_800_000_100, RollbackStage::Started),
            CurrentSince::rolled_back("v1", 1_800_000_100, RollbackStage::Done),
        ] {
            assert_eq!(CurrentSince::parse(&record.to_tag_value()), Some(record));
        }
        assert_eq!(
            CurrentSince::moved("v2", 7).to_tag_value(),
            "v2 7",
            "the form finishSecret has always written"
        );
        assert_eq!(
            CurrentSince::rolled_back("v1", 7, RollbackStage::Done).to_tag_value(),
            "v1 7 rolled-back"
        );
        assert_eq!(CurrentSince::parse("v2"), None);
        assert_eq!(CurrentSince::parse("v2 soon"), None);
        assert_eq!(
            CurrentSince::parse("v2 7 something-else").map(|r| r.rollback),
            Some(None)
        );
        assert_eq!(CurrentSince::moved("v2", 7).at_if_about("v1"), None);
    }
}
