//! Reading and writing `.npy` arrays through the `npyz` crate, with the checks
//! a user's file needs before anything is allocated: the header must fit the
//! file, the shape must match the data that is really there, and the dtype
//! must be one the caller can use.

use std::io::Cursor;
use std::path::Path;

use npyz::{DType, NpyFile, NpyHeader, TypeChar, TypeStr, WriterBuilder};

use crate::error::{Error, Result};

/// An array read from an `.npy` file: its shape and its elements in C order.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray<T> {
    /// The shape as stored in the header.
    pub shape: Vec<usize>,
    /// The elements, row-major.
    pub data: Vec<T>,
}

/// The `.npy` magic string.
const MAGIC: &[u8] = b"\x93NUMPY";

/// Parses and checks the header of `bytes`; returns it with the byte offset of the data.
fn checked_header(bytes: &[u8], name: &str) -> Result<(NpyHeader, usize)> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(Error::file(
            name,
            "not an .npy file (no NUMPY magic string)",
        ));
    }
    // The header length field is read by hand so that a corrupt length is
    // rejected before npyz allocates a buffer for it.
    let (len_field, prefix) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(Error::file(name, format!("unsupported .npy version {v}"))),
    };
    if prefix + len_field > bytes.len() {
        return Err(Error::file(
            name,
            format!(
                "truncated: the header claims {len_field} bytes but the file has {}",
                bytes.len()
            ),
        ));
    }
    let mut cursor = Cursor::new(bytes);
    let header = NpyHeader::from_reader(&mut cursor)
        .map_err(|e| Error::file(name, format!("bad .npy header: {e}")))?;
    let offset = cursor.position() as usize;
    if header.order() == npyz::Order::Fortran && header.shape().len() > 1 {
        return Err(Error::file(
            name,
            "Fortran-ordered arrays are not supported",
        ));
    }
    let item = dtype_of(&header, name)?.num_bytes().unwrap_or(0) as u128;
    let count = header
        .shape()
        .iter()
        .try_fold(1u128, |acc, &d| acc.checked_mul(d as u128))
        .ok_or_else(|| Error::file(name, "the header's shape overflows"))?;
    let available = (bytes.len() - offset) as u128;
    if count * item != available {
        let what = if count * item > available {
            "truncated"
        } else {
            "trailing data"
        };
        return Err(Error::file(
            name,
            format!(
                "{what}: the header claims shape {:?} ({} bytes of data) but the file holds {available}",
                header.shape(),
                count * item
            ),
        ));
    }
    Ok((header, offset))
}

fn dtype_of(header: &NpyHeader, name: &str) -> Result<TypeStr> {
    match header.dtype() {
        DType::Plain(t) => Ok(t),
        other => Err(Error::file(
            name,
            format!("structured dtype {} is not supported", other.descr()),
        )),
    }
}

fn shape_of(header: &NpyHeader) -> Vec<usize> {
    header.shape().iter().map(|&d| d as usize).collect()
}

fn read_as<T: npyz::Deserialize>(bytes: &[u8], header: NpyHeader, name: &str) -> Result<Vec<T>> {
    NpyFile::with_header(header, bytes)
        .into_vec::<T>()
        .map_err(|e| Error::file(name, format!("cannot read the data: {e}")))
}

/// Reads a numeric array (bool, any int, f32 or f64) as `f32`.
pub fn read_f32(bytes: &[u8], name: &str) -> Result<NpyArray<f32>> {
    let (header, offset) = checked_header(bytes, name)?;
    let shape = shape_of(&header);
    let ts = dtype_of(&header, name)?;
    let body = &bytes[offset..];
    let data: Vec<f32> = match (ts.type_char(), ts.size_field()) {
        (TypeChar::Float, 4) => read_as::<f32>(body, header, name)?,
        (TypeChar::Float, 8) => convert(read_as::<f64>(body, header, name)?, |v| v as f32),
        (TypeChar::Uint, 1) => convert(read_as::<u8>(body, header, name)?, f32::from),
        (TypeChar::Bool, 1) => convert(read_as::<bool>(body, header, name)?, |b| {
            f32::from(u8::from(b))
        }),
        (TypeChar::Int | TypeChar::Uint, _) => {
            convert(read_ints(body, header, &ts, name)?, |v| v as f32)
        }
        _ => {
            return Err(Error::file(
                name,
                format!("dtype {ts} is not numeric (expected an integer or float array)"),
            ))
        }
    };
    Ok(NpyArray { shape, data })
}

/// Reads an integer array (any width, signed or not) as `i64`.
pub fn read_i64(bytes: &[u8], name: &str) -> Result<NpyArray<i64>> {
    let (header, offset) = checked_header(bytes, name)?;
    let shape = shape_of(&header);
    let ts = dtype_of(&header, name)?;
    let data = read_ints(&bytes[offset..], header, &ts, name)?;
    Ok(NpyArray { shape, data })
}

fn read_ints(body: &[u8], header: NpyHeader, ts: &TypeStr, name: &str) -> Result<Vec<i64>> {
    Ok(match (ts.type_char(), ts.size_field()) {
        (TypeChar::Int, 1) => convert(read_as::<i8>(body, header, name)?, i64::from),
        (TypeChar::Int, 2) => convert(read_as::<i16>(body, header, name)?, i64::from),
        (TypeChar::Int, 4) => convert(read_as::<i32>(body, header, name)?, i64::from),
        (TypeChar::Int, 8) => read_as::<i64>(body, header, name)?,
        (TypeChar::Uint, 1) => convert(read_as::<u8>(body, header, name)?, i64::from),
        (TypeChar::Uint, 2) => convert(read_as::<u16>(body, header, name)?, i64::from),
        (TypeChar::Uint, 4) => convert(read_as::<u32>(body, header, name)?, i64::from),
        (TypeChar::Uint, 8) => {
            let values = read_as::<u64>(body, header, name)?;
            values
                .into_iter()
                .map(|v| {
                    i64::try_from(v)
                        .map_err(|_| Error::file(name, format!("value {v} does not fit in int64")))
                })
                .collect::<Result<_>>()?
        }
        _ => {
            return Err(Error::file(
                name,
                format!("dtype {ts} is not an integer type"),
            ))
        }
    })
}

/// Reads an array of strings (NumPy unicode `U` or bytes `S`).
pub fn read_strings(bytes: &[u8], name: &str) -> Result<NpyArray<String>> {
    let (header, offset) = checked_header(bytes, name)?;
    let shape = shape_of(&header);
    let ts = dtype_of(&header, name)?;
    let body = &bytes[offset..];
    let data = match ts.type_char() {
        TypeChar::UnicodeStr => read_as::<String>(body, header, name)?,
        TypeChar::ByteStr => read_as::<Vec<u8>>(body, header, name)?
            .into_iter()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .collect(),
        _ => {
            return Err(Error::file(
                name,
                format!("dtype {ts} is not a string type"),
            ))
        }
    };
    Ok(NpyArray { shape, data })
}

fn convert<A, B>(values: Vec<A>, f: impl Fn(A) -> B) -> Vec<B> {
    values.into_iter().map(f).collect()
}

/// Encodes `data` with `shape` as `.npy` bytes in the element type's own dtype.
pub fn encode<T: npyz::AutoSerialize>(shape: &[usize], data: &[T]) -> Vec<u8> {
    encode_with(shape, data, T::default_dtype())
}

/// Encodes strings as a NumPy unicode (`<U`) array, as NumPy itself writes them.
pub fn encode_strings(shape: &[usize], data: &[String]) -> Vec<u8> {
    let width = data
        .iter()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(1)
        .max(1);
    let ts: TypeStr = format!("<U{width}")
        .parse()
        .expect("a <U type string with a positive width is valid");
    encode_with::<String>(shape, data, DType::Plain(ts))
}

fn encode_with<T: npyz::Serialize>(shape: &[usize], data: &[T], dtype: DType) -> Vec<u8> {
    let mut out = Vec::new();
    let dims: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
    // Writing into a Vec cannot fail; the dtypes passed here all match `T`.
    let mut writer = npyz::WriteOptions::new()
        .dtype(dtype)
        .shape(&dims)
        .writer(&mut out)
        .begin_nd()
        .expect("writing .npy into memory");
    writer
        .extend(data.iter())
        .expect("writing .npy into memory");
    writer.finish().expect("writing .npy into memory");
    out
}

/// Reads a whole file, naming it in the error.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_floats_ints_and_strings() {
        let f = encode(&[2, 3], &[1.0f32, 2., 3., 4., 5., 6.]);
        assert_eq!(
            read_f32(&f, "f").unwrap(),
            NpyArray {
                shape: vec![2, 3],
                data: vec![1., 2., 3., 4., 5., 6.]
            }
        );
        let i = encode(&[3], &[7i64, -1, 3]);
        assert_eq!(read_i64(&i, "i").unwrap().data, vec![7, -1, 3]);
        assert_eq!(read_f32(&i, "i").unwrap().data, vec![7., -1., 3.]);
        let s: Vec<String> = ["train", "test", "validation"].map(String::from).to_vec();
        let b = encode_strings(&[3], &s);
        assert!(String::from_utf8_lossy(&b).contains("<U10"));
        assert_eq!(read_strings(&b, "s").unwrap().data, s);
    }

    #[test]
    fn uint8_images_read_as_float() {
        let b = encode(&[1, 2, 2], &[0u8, 1, 254, 255]);
        assert_eq!(read_f32(&b, "img").unwrap().data, vec![0., 1., 254., 255.]);
    }

    /// An .npy file with a hand-written header, as a corrupt file would have.
    fn raw_npy(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut text = dict.to_string();
        while !(10 + text.len() + 1).is_multiple_of(64) {
            text.push(' ');
        }
        text.push('\n');
        let mut out = MAGIC.to_vec();
        out.extend([1, 0]);
        out.extend((text.len() as u16).to_le_bytes());
        out.extend(text.as_bytes());
        out.extend(data);
        out
    }

    #[test]
    fn truncated_and_huge_headers_are_errors_naming_the_file() {
        let b = encode(&[4], &[1.0f32; 4]);
        let err = read_f32(&b[..b.len() - 3], "resp/3.npy")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("resp/3.npy: truncated"), "{err}");
        let huge = raw_npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 1000000), }",
            &[0; 16],
        );
        let err = read_f32(&huge, "big.npy").unwrap_err().to_string();
        assert!(
            err.contains("big.npy") && err.contains("truncated"),
            "{err}"
        );
        let err = read_f32(b"hello", "x.npy").unwrap_err().to_string();
        assert!(err.contains("not an .npy file"), "{err}");
        let mut bad_len = b.clone();
        bad_len[8] = 0xff;
        bad_len[9] = 0xff;
        assert!(read_f32(&bad_len, "h.npy")
            .unwrap_err()
            .to_string()
            .contains("header"));
    }

    #[test]
    fn wrong_dtype_is_an_error() {
        let s = encode_strings(&[1], &["a".to_string()]);
        assert!(read_f32(&s, "s.npy")
            .unwrap_err()
            .to_string()
            .contains("not numeric"));
        let f = encode(&[1], &[1.5f64]);
        assert!(read_i64(&f, "f.npy").is_err());
    }
}
