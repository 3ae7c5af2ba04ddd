//! f64 fields that may be NaN or ±∞ (a run that diverged before its first good epoch has no
//! validation loss), written so that they read back: a finite value as a JSON number, a
//! non-finite one as the string `"NaN"`, `"inf"` or `"-inf"` (JSON has no such numbers and
//! serde_json would write `null`, which then fails to read as f64). Reading also accepts `null`
//! (journals written before this) as NaN. Use with `#[serde(with = "crate::results::nonfinite")]`.

use serde::{de, Deserialize, Deserializer, Serializer};

pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() {
        s.serialize_f64(*v)
    } else if v.is_nan() {
        s.serialize_str("NaN")
    } else if *v > 0.0 {
        s.serialize_str("inf")
    } else {
        s.serialize_str("-inf")
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Repr {
    Num(f64),
    Text(String),
    Null(()),
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    match Option::<Repr>::deserialize(d)? {
        Some(Repr::Num(v)) => Ok(v),
        Some(Repr::Text(t)) => match t.as_str() {
            "NaN" | "nan" => Ok(f64::NAN),
            "inf" | "Infinity" => Ok(f64::INFINITY),
            "-inf" | "-Infinity" => Ok(f64::NEG_INFINITY),
            other => Err(de::Error::custom(format!(
                "{other:?}: expected a number, \"NaN\", \"inf\" or \"-inf\""
            ))),
        },
        Some(Repr::Null(())) | None => Ok(f64::NAN),
    }
}
