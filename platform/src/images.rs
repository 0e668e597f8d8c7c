//! Uploaded images are decoded, not only recognised by their first bytes (issue 10,
//! point 9): a file that claims to be a PNG, JPEG, GIF or WebP must decode as one, within
//! the dimension and memory limits (`limits::IMAGE_*`), before it is stored. Only these
//! four decoders are compiled in.

use std::io::Cursor;
use std::num::NonZeroU64;

use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::options::DecoderOptions;

use crate::error::{Error, Result};
use crate::limits::{IMAGE_DECODE_BYTES_MAX, IMAGE_FRAMES_MAX, IMAGE_PIXELS_MAX, IMAGE_SIDE_MAX};
use crate::storage::sniff_image;

/// An image that decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckedImage {
    pub content_type: &'static str,
    pub ext: &'static str,
    pub width: u32,
    pub height: u32,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::invalid_field("file", message)
}

fn unreadable(kind: &str, e: impl std::fmt::Display) -> Error {
    invalid(format!("not a readable {kind} image: {e}"))
}

/// Decodes the whole image (every frame of a GIF); CPU-bound, so call it off the async
/// runtime.
pub fn check(bytes: &[u8]) -> Result<CheckedImage> {
    let (content_type, ext) = sniff_image(bytes).ok_or_else(|| invalid("a PNG, JPEG, GIF or WebP image"))?;
    let (width, height) = match ext {
        "png" => png(bytes)?,
        "jpg" => jpeg(bytes)?,
        "gif" => gif(bytes)?,
        _ => webp(bytes)?,
    };
    Ok(CheckedImage { content_type, ext, width, height })
}

fn dimensions_ok(w: u32, h: u32) -> Result<()> {
    let ok =
        w > 0 && h > 0 && w <= IMAGE_SIDE_MAX && h <= IMAGE_SIDE_MAX && u64::from(w) * u64::from(h) <= IMAGE_PIXELS_MAX;
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "{w}×{h} pixels: at most {IMAGE_SIDE_MAX} pixels a side and {IMAGE_PIXELS_MAX} pixels in all"
        )))
    }
}

/// A buffer for the decoded pixels, within the decoding budget.
fn buffer(size: Option<usize>) -> Result<Vec<u8>> {
    match size {
        Some(n) if n as u64 <= IMAGE_DECODE_BYTES_MAX => Ok(vec![0; n]),
        _ => Err(invalid("the decoded image would be too large")),
    }
}

fn png(bytes: &[u8]) -> Result<(u32, u32)> {
    let limits = png::Limits { bytes: IMAGE_DECODE_BYTES_MAX as usize };
    let mut decoder = png::Decoder::new_with_limits(Cursor::new(bytes), limits);
    let info = decoder.read_header_info().map_err(|e| unreadable("PNG", e))?;
    let (w, h) = (info.width, info.height);
    dimensions_ok(w, h)?;
    let mut reader = decoder.read_info().map_err(|e| unreadable("PNG", e))?;
    let mut buf = buffer(reader.output_buffer_size())?;
    reader.next_frame(&mut buf).map_err(|e| unreadable("PNG", e))?;
    Ok((w, h))
}

fn jpeg(bytes: &[u8]) -> Result<(u32, u32)> {
    let side = IMAGE_SIDE_MAX as usize;
    let options = DecoderOptions::default().set_max_width(side).set_max_height(side);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder.decode_headers().map_err(|e| unreadable("JPEG", e))?;
    let info = decoder.info().ok_or_else(|| invalid("not a readable JPEG image"))?;
    let (w, h) = (u32::from(info.width), u32::from(info.height));
    dimensions_ok(w, h)?;
    let mut buf = buffer(decoder.output_buffer_size())?;
    decoder.decode_into(&mut buf).map_err(|e| unreadable("JPEG", e))?;
    Ok((w, h))
}

fn gif(bytes: &[u8]) -> Result<(u32, u32)> {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::Indexed);
    if let Some(limit) = NonZeroU64::new(IMAGE_DECODE_BYTES_MAX) {
        options.set_memory_limit(gif::MemoryLimit::Bytes(limit));
    }
    let mut decoder = options.read_info(Cursor::new(bytes)).map_err(|e| unreadable("GIF", e))?;
    let (w, h) = (u32::from(decoder.width()), u32::from(decoder.height()));
    dimensions_ok(w, h)?;
    let mut frames = 0;
    while decoder.read_next_frame().map_err(|e| unreadable("GIF", e))?.is_some() {
        frames += 1;
        if frames > IMAGE_FRAMES_MAX {
            return Err(invalid(format!("at most {IMAGE_FRAMES_MAX} frames")));
        }
    }
    if frames == 0 {
        return Err(invalid("not a readable GIF image: no frame"));
    }
    Ok((w, h))
}

fn webp(bytes: &[u8]) -> Result<(u32, u32)> {
    let mut decoder = image_webp::WebPDecoder::new(Cursor::new(bytes)).map_err(|e| unreadable("WebP", e))?;
    decoder.set_memory_limit(IMAGE_DECODE_BYTES_MAX as usize);
    let (w, h) = decoder.dimensions();
    dimensions_ok(w, h)?;
    let mut buf = buffer(decoder.output_buffer_size())?;
    decoder.read_image(&mut buf).map_err(|e| unreadable("WebP", e))?;
    Ok((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A w×h RGB PNG (all black).
    pub fn png_of(w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        let mut writer = enc.write_header().unwrap();
        writer.write_image_data(&vec![0; (w * h * 3) as usize]).unwrap();
        writer.finish().unwrap();
        out
    }

    #[test]
    fn images_must_decode_within_limits() {
        let ok = check(&png_of(3, 2)).unwrap();
        assert_eq!((ok.ext, ok.width, ok.height), ("png", 3, 2));
        // The right magic bytes, then garbage.
        let mut fake = png_of(3, 2);
        fake.truncate(40);
        assert!(check(&fake).is_err());
        assert!(check(b"\xff\xd8\xff\xe0 not a jpeg").is_err());
        assert!(check(b"GIF89a not a gif").is_err());
        assert!(check(b"RIFF\0\0\0\0WEBPVP8 nope").is_err());
        // Too wide (1×1 rows compress to almost nothing).
        let wide = png_of(IMAGE_SIDE_MAX + 1, 1);
        let e = check(&wide).unwrap_err().to_string();
        assert!(e.contains("pixels"), "{e}");
    }
}
