//! Secrets Manager's rotation schedule expressions, checked before `keyrot
//! enroll` writes anything: `rate(N hours)` (every 4 hours at most often),
//! `rate(N days)` (1 to 1000), or a six-field `cron(minutes hours
//! day-of-month month day-of-week year)` in AWS's cron grammar. Pure, so every
//! rule has a unit test; AWS stays the judge of what passes here.

/// Why `expression` is not a schedule Secrets Manager takes, with an example.
pub fn check_expression(expression: &str) -> Result<(), String> {
    let expression = expression.trim();
    let examples = "such as rate(10 days), rate(12 hours) or cron(0 4 ? * MON *)";
    if let Some(inner) = strip_call(expression, "rate") {
        return check_rate(inner).map_err(|why| format!("{expression:?}: {why} ({examples})"));
    }
    if let Some(inner) = strip_call(expression, "cron") {
        return check_cron(inner).map_err(|why| format!("{expression:?}: {why} ({examples})"));
    }
    Err(format!(
        "{expression:?} is not a schedule expression: it is rate(...) or cron(...), {examples}; or use --every-days N"
    ))
}

fn strip_call<'a>(expression: &'a str, name: &str) -> Option<&'a str> {
    expression
        .strip_prefix(name)?
        .trim_start()
        .strip_prefix('(')?
        .strip_suffix(')')
        .map(str::trim)
}

fn check_rate(inner: &str) -> Result<(), String> {
    let [value, unit] = inner.split_whitespace().collect::<Vec<_>>()[..] else {
        return Err("a rate is a number and a unit, hours or days".into());
    };
    let value: u32 = value
        .parse()
        .map_err(|_| format!("{value:?} is not a whole number"))?;
    match unit {
        "hour" | "hours" if (4..=23).contains(&value) => Ok(()),
        "hour" | "hours" => Err(
            "a rate in hours is 4 to 23 (Secrets Manager rotates at most every four hours; use days beyond)"
                .into(),
        ),
        "day" | "days" if (1..=1000).contains(&value) => Ok(()),
        "day" | "days" => Err("a rate in days is 1 to 1000".into()),
        other => Err(format!("the unit {other:?} is not hours or days")),
    }
}

/// One cron field: its name, its range, and the names it accepts.
struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// The extra symbols AWS allows in it (`?`, `L`, `W`, `#`).
    extra: &'static str,
}

const MONTHS: &[&str] = &[
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

const FIELDS: [Field; 6] = [
    Field {
        name: "minutes",
        min: 0,
        max: 59,
        names: &[],
        extra: "",
    },
    Field {
        name: "hours",
        min: 0,
        max: 23,
        names: &[],
        extra: "",
    },
    Field {
        name: "day-of-month",
        min: 1,
        max: 31,
        names: &[],
        extra: "?LW",
    },
    Field {
        name: "month",
        min: 1,
        max: 12,
        names: MONTHS,
        extra: "",
    },
    Field {
        name: "day-of-week",
        min: 1,
        max: 7,
        names: DAYS,
        extra: "?L#",
    },
    Field {
        name: "year",
        min: 1970,
        max: 2199,
        names: &[],
        extra: "",
    },
];

fn check_cron(inner: &str) -> Result<(), String> {
    let parts: Vec<&str> = inner.split_whitespace().collect();
    if parts.len() != FIELDS.len() {
        return Err(format!(
            "a cron expression has 6 fields (minutes hours day-of-month month day-of-week year), not {}",
            parts.len()
        ));
    }
    for (part, field) in parts.iter().zip(&FIELDS) {
        check_field(part, field).map_err(|why| format!("{} {part:?}: {why}", field.name))?;
    }
    let (day_of_month, day_of_week) = (parts[2], parts[4]);
    if (day_of_month == "?") == (day_of_week == "?") {
        return Err(
            "exactly one of day-of-month and day-of-week is ? (AWS's cron cannot have both, or neither)"
                .into(),
        );
    }
    Ok(())
}

fn check_field(part: &str, field: &Field) -> Result<(), String> {
    if part == "*" || (part == "?" && field.extra.contains('?')) {
        return Ok(());
    }
    for item in part.split(',') {
        check_item(item, field)?;
    }
    Ok(())
}

fn check_item(item: &str, field: &Field) -> Result<(), String> {
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => (range, Some(step)),
        None => (item, None),
    };
    if let Some(step) = step {
        let step: u32 = step.parse().map_err(|_| format!("{step:?} is no step"))?;
        if step == 0 || step > field.max {
            return Err(format!("a step of {step} is out of range"));
        }
    }
    if range == "*" {
        return Ok(());
    }
    if field.extra.contains('L') && range.ends_with('L') {
        let before = range.trim_end_matches('L');
        return if before.is_empty() {
            Ok(())
        } else {
            value(before, field).map(|_| ())
        };
    }
    if field.extra.contains('W') && range.ends_with('W') {
        return value(range.trim_end_matches('W'), field).map(|_| ());
    }
    if field.extra.contains('#')
        && let Some((day, nth)) = range.split_once('#')
    {
        value(day, field)?;
        return match nth.parse::<u32>() {
            Ok(1..=5) => Ok(()),
            _ => Err(format!("#{nth} is not 1 to 5")),
        };
    }
    match range.split_once('-') {
        Some((first, last)) => {
            value(first, field)?;
            value(last, field)?;
            Ok(())
        }
        None => value(range, field).map(|_| ()),
    }
}

fn value(text: &str, field: &Field) -> Result<u32, String> {
    if let Some(index) = field
        .names
        .iter()
        .position(|name| name.eq_ignore_ascii_case(text))
    {
        return Ok(index as u32 + 1);
    }
    let number: u32 = text.parse().map_err(|_| {
        format!(
            "{text:?} is not a number from {} to {}",
            field.min, field.max
        )
    })?;
    if (field.min..=field.max).contains(&number) {
        Ok(number)
    } else {
        Err(format!(
            "{number} is not from {} to {}",
            field.min, field.max
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_managers_examples_pass() {
        for good in [
            "rate(10 days)",
            "rate(1 day)",
            "rate(4 hours)",
            "rate(12 hours)",
            "cron(0 4 ? * MON *)",
            "cron(0 8 1 * ? *)",
            "cron(0 16 ? * MON-FRI *)",
            "cron(0 0 L * ? *)",
            "cron(0 10 ? * 6#3 *)",
            "cron(0 */4 * * ? *)",
            "cron(0 1 15W JAN,JUL ? 2027)",
        ] {
            assert_eq!(check_expression(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn typos_and_impossible_schedules_say_why() {
        for (bad, why) in [
            ("10 days", "rate(...) or cron(...)"),
            ("rate(10)", "a number and a unit"),
            ("rate(10 weeks)", "hours or days"),
            ("rate(1 hours)", "at most every four hours"),
            ("rate(1001 days)", "1 to 1000"),
            ("cron(0 4 * * MON)", "6 fields"),
            ("cron(0 25 ? * MON *)", "hours \"25\""),
            ("cron(0 4 * * MON *)", "exactly one of"),
            ("cron(0 4 ? * FUNDAY *)", "day-of-week"),
            ("cron(0 4 ? FOO MON *)", "month"),
        ] {
            let error = check_expression(bad).unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }
}
