//! Canonical JSON: object keys sorted (byte order) at every depth, no
//! whitespace. Config, manifest and index digests are taken over these
//! bytes, so they must not depend on map types or serde_json features
//! (`preserve_order` would keep insertion order). The writer below walks
//! the value itself and sorts keys explicitly; serde_json is used only to
//! escape strings and format numbers.

use serde_json::Value;

/// Serialize `value` canonically.
pub fn to_canonical_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_scalar(&Value::String(key.clone()), out);
                out.push(b':');
                write_value(&map[key], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn write_scalar(value: &Value, out: &mut Vec<u8>) {
    // Writing a string, number, bool or null into a Vec cannot fail.
    serde_json::to_writer(out, value).expect("serializing a JSON scalar into memory");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_keys_are_sorted_and_whitespace_dropped() {
        let v = json!({
            "b": {"z": 1, "a": [ {"y": true, "x": null} ]},
            "a": "s\"q",
            "C": 1.5
        });
        assert_eq!(
            String::from_utf8(to_canonical_vec(&v)).unwrap(),
            r#"{"C":1.5,"a":"s\"q","b":{"a":[{"x":null,"y":true}],"z":1}}"#
        );
    }

    #[test]
    fn insertion_order_does_not_matter() {
        let mut a = serde_json::Map::new();
        a.insert("zeta".into(), json!(1));
        a.insert("alpha".into(), json!(2));
        let mut b = serde_json::Map::new();
        b.insert("alpha".into(), json!(2));
        b.insert("zeta".into(), json!(1));
        assert_eq!(
            to_canonical_vec(&Value::Object(a)),
            to_canonical_vec(&Value::Object(b))
        );
    }
}
