//! Facts about protobuf's well-known types that several layers need.

/// The wrapper types (`google.protobuf.Int32Value` …): JSON is their scalar.
pub const WRAPPERS: &[&str] = &[
    "google.protobuf.DoubleValue",
    "google.protobuf.FloatValue",
    "google.protobuf.Int64Value",
    "google.protobuf.UInt64Value",
    "google.protobuf.Int32Value",
    "google.protobuf.UInt32Value",
    "google.protobuf.BoolValue",
    "google.protobuf.StringValue",
    "google.protobuf.BytesValue",
];

/// True for a wrapper type, by full name.
///
/// ```
/// assert!(protogate::wkt::is_wrapper("google.protobuf.BoolValue"));
/// assert!(!protogate::wkt::is_wrapper("google.protobuf.Timestamp"));
/// ```
pub fn is_wrapper(full_name: &str) -> bool {
    WRAPPERS.contains(&full_name)
}

/// True for well-known types whose JSON form is a string: Timestamp, Duration, FieldMask.
pub fn is_string_form(full_name: &str) -> bool {
    matches!(
        full_name,
        "google.protobuf.Timestamp" | "google.protobuf.Duration" | "google.protobuf.FieldMask"
    )
}
