//! Scalars beyond GraphQL's own. `Int` is 32-bit by the specification, and strict clients
//! (`graphql-core`, `gql`, codegen's types) refuse a larger value in it; millisecond
//! timestamps, byte counts and ids are larger.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};

/// A whole number of up to 64 bits: millisecond timestamps, byte counts, ids. Written as a
/// JSON number; read from a number or a string of digits (what JavaScript clients send for
/// values beyond 2^53).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Int64(pub i64);

#[Scalar(name = "Int64")]
impl ScalarType for Int64 {
    fn parse(value: Value) -> InputValueResult<Self> {
        let parsed = match &value {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => return Err(InputValueError::expected_type(value)),
        };
        parsed.map(Int64).ok_or_else(|| InputValueError::custom("an Int64 is a whole number of at most 64 bits"))
    }

    fn is_valid(value: &Value) -> bool {
        matches!(value, Value::Number(n) if n.is_i64())
            || matches!(value, Value::String(s) if s.trim().parse::<i64>().is_ok())
    }

    fn to_value(&self) -> Value {
        Value::Number(self.0.into())
    }
}

impl From<i64> for Int64 {
    fn from(v: i64) -> Self {
        Self(v)
    }
}

impl From<u64> for Int64 {
    fn from(v: u64) -> Self {
        Self(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<Int64> for i64 {
    fn from(v: Int64) -> Self {
        v.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_beyond_32_bits_goes_both_ways_and_a_fraction_is_refused() {
        let ms = 1_765_000_000_000_i64;
        assert_eq!(Int64(ms).to_value(), Value::Number(ms.into()));
        assert_eq!(Int64::parse(Value::Number(ms.into())).ok(), Some(Int64(ms)));
        assert_eq!(Int64::parse(Value::String(ms.to_string())).ok(), Some(Int64(ms)));
        let half = serde_json::Number::from_f64(1.5).map(Value::Number).unwrap_or(Value::Null);
        assert!(Int64::parse(half).is_err());
        assert!(Int64::parse(Value::Boolean(true)).is_err());
        assert_eq!(Int64::from(u64::MAX), Int64(i64::MAX));
    }
}
