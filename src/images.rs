//! Pictures from clients, made safe to keep and serve: the format read from
//! the bytes (PNG, JPEG or WebP for avatars, and GIF too for attachments,
//! whatever the request claims), decoded within limits of size and memory,
//! and scaled to a small PNG: an avatar's centred square, an attachment's
//! preview. A JPEG attachment also loses its metadata (location), without
//! being decoded. Decoding runs on blocking threads, a few at a
//! time: a picture costs up to [`MAX_DECODED_BYTES`] and tens of
//! milliseconds of a core, so a burst of uploads queues briefly or is
//! refused (`busy`), never starves message delivery or exhausts memory.

use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{DynamicImage, ImageDecoder, ImageEncoder, ImageFormat, ImageReader, Limits};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// The largest upload accepted, in bytes (larger is `payload_too_large`).
pub const MAX_UPLOAD_BYTES: usize = 2 * 1024 * 1024;

/// The width and height of a stored avatar, in pixels.
pub const AVATAR_PX: u32 = 128;

/// The widest and tallest picture decoded, in pixels.
pub const MAX_SIDE: u32 = 8192;

/// Memory a decoder may allocate for one picture. A tiny file can claim
/// enormous dimensions (a decompression bomb); the decoder refuses before
/// allocating, from the header alone.
pub const MAX_DECODED_BYTES: u64 = 64 * 1024 * 1024;

/// Uploads whose bodies may be in memory at once (each up to
/// [`MAX_UPLOAD_BYTES`]); more are refused with `busy` before their body is
/// read.
const UPLOADS: usize = 8;

/// Pictures decoded at once.
const DECODERS: usize = 2;

/// How long an upload may wait for a decoder before it gets `busy`.
const MAX_WAIT: Duration = Duration::from_secs(2);

/// How long an attachment waits for a decoder before it goes without a
/// preview (the file itself is kept either way).
const PREVIEW_WAIT: Duration = Duration::from_secs(30);

/// The bounded pool that turns uploads into thumbnails.
pub struct Thumbnailer {
    uploads: Arc<Semaphore>,
    decoders: Arc<Semaphore>,
}

/// Room for one upload's body, held from before it is read until its
/// thumbnail is made.
pub struct UploadSlot {
    _permit: OwnedSemaphorePermit,
}

impl Default for Thumbnailer {
    fn default() -> Self {
        Thumbnailer {
            uploads: Arc::new(Semaphore::new(UPLOADS)),
            decoders: Arc::new(Semaphore::new(DECODERS)),
        }
    }
}

impl Thumbnailer {
    /// Room for one more upload's body, or `busy` when all are taken.
    pub fn admit(&self) -> Result<UploadSlot, ApiError> {
        self.uploads
            .clone()
            .try_acquire_owned()
            .map(|permit| UploadSlot { _permit: permit })
            .map_err(|_| ApiError::Busy)
    }

    /// Room for one more body in memory, waiting for it (an attached
    /// picture, whose upload is already on disk, queues rather than fail).
    pub async fn hold(&self) -> Result<UploadSlot, ApiError> {
        self.uploads
            .clone()
            .acquire_owned()
            .await
            .map(|permit| UploadSlot { _permit: permit })
            .map_err(|_| ApiError::Internal)
    }

    /// The avatar made of an uploaded picture: a PNG of
    /// [`AVATAR_PX`]² pixels. `invalid_image` for anything that is not a
    /// PNG, JPEG or WebP within the limits; `busy` when the decoders stay
    /// taken for [`MAX_WAIT`].
    pub async fn avatar(&self, slot: UploadSlot, upload: Bytes) -> Result<Vec<u8>, ApiError> {
        self.decoding(move || {
            let made = thumbnail(&upload);
            drop((slot, upload));
            made
        })
        .await?
    }

    /// The preview of an attached picture, made on the same few decoding
    /// threads as avatars (waiting up to [`PREVIEW_WAIT`] for one; past
    /// that it has none).
    pub async fn preview(&self, upload: Bytes) -> Preview {
        let wait = self.decoders.clone().acquire_owned();
        let Ok(Ok(decoder)) = tokio::time::timeout(PREVIEW_WAIT, wait).await else {
            return Preview::default();
        };
        tokio::task::spawn_blocking(move || {
            let made = preview(&upload);
            drop((decoder, upload));
            made
        })
        .await
        .unwrap_or_default()
    }

    /// Runs `work` on a blocking thread once a decoder is free (`busy`
    /// when none is within [`MAX_WAIT`]).
    async fn decoding<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let decoder = tokio::time::timeout(MAX_WAIT, self.decoders.clone().acquire_owned())
            .await
            .map_err(|_| ApiError::Busy)?
            .map_err(|_| ApiError::Internal)?;
        // The permits go with the work: a client that hangs up does not
        // stop a decode, so it must not free its place either.
        tokio::task::spawn_blocking(move || {
            let made = work();
            drop(decoder);
            made
        })
        .await
        .map_err(|_| ApiError::Internal)
    }
}

/// Decodes `upload` within the limits, crops its centred square, scales
/// it to [`AVATAR_PX`] and encodes it as PNG. Runs on a blocking thread.
fn thumbnail(upload: &[u8]) -> Result<Vec<u8>, ApiError> {
    let (picture, orientation) = decode(upload, AVATAR_FORMATS)?;
    let mut square = centre_square(&picture);
    if let Some(o) = orientation {
        square.apply_orientation(o);
    }
    png(&square)
}

/// The formats an avatar may be.
const AVATAR_FORMATS: &[ImageFormat] = &[ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::WebP];

/// The formats an attachment gets a preview for.
const PREVIEW_FORMATS: &[ImageFormat] = &[
    ImageFormat::Png,
    ImageFormat::Jpeg,
    ImageFormat::Gif,
    ImageFormat::WebP,
];

/// The widest and tallest thumbnail of an attachment, in pixels.
pub const PREVIEW_PX: u32 = 400;

/// What an attached picture shows: its size, and a thumbnail unless it
/// could not be decoded within the limits.
#[derive(Debug, Clone, Default)]
pub struct Preview {
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// A PNG of at most [`PREVIEW_PX`] a side, turned upright.
    pub png: Option<Vec<u8>>,
}

/// The media type of a picture hearth previews, read from its first bytes
/// (whatever the upload claims).
pub fn picture_type(head: &[u8]) -> Option<&'static str> {
    let format = image::guess_format(head).ok()?;
    PREVIEW_FORMATS
        .contains(&format)
        .then(|| format.to_mime_type())
}

/// Turns `upload` into the bytes to decode: the picture itself, in the
/// formats given, refusing before allocating anything a header's
/// dimensions say would pass the limits (a decompression bomb). Returns
/// the picture and the turn its metadata asks for.
fn decode(
    upload: &[u8],
    formats: &[ImageFormat],
) -> Result<(DynamicImage, Option<image::metadata::Orientation>), ApiError> {
    let format = image::guess_format(upload)
        .map_err(|_| ApiError::InvalidImage("it is not a PNG, JPEG or WebP picture"))?;
    if !formats.contains(&format) {
        return Err(ApiError::InvalidImage(
            "only PNG, JPEG and WebP pictures are accepted",
        ));
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    let mut reader = ImageReader::with_format(Cursor::new(upload), format);
    reader.limits(limits.clone());
    let too_big = "it is larger than 8192×8192 pixels or 64 MiB decoded";
    let damaged = "it is damaged or uses a feature that cannot be decoded";
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| why(&e, too_big, damaged))?;
    // The decoded pixels count against the limit too, as
    // `ImageReader::decode` counts them (`into_decoder` does not).
    limits
        .reserve(decoder.total_bytes())
        .map_err(|_| ApiError::InvalidImage(too_big))?;
    decoder
        .set_limits(limits)
        .map_err(|e| why(&e, too_big, damaged))?;
    // A phone's photo is stored sideways with a note to turn it.
    let orientation = decoder.orientation().ok();
    let picture = DynamicImage::from_decoder(decoder).map_err(|e| why(&e, too_big, damaged))?;
    Ok((picture, orientation))
}

/// `picture` as a PNG.
fn png(picture: &DynamicImage) -> Result<Vec<u8>, ApiError> {
    let mut png = Vec::new();
    let rgba = picture.to_rgba8();
    PngEncoder::new_with_quality(&mut png, CompressionType::Best, FilterType::Adaptive)
        .write_image(
            rgba.as_raw(),
            rgba.width(),
            rgba.height(),
            image::ExtendedColorType::Rgba8,
        )
        .map_err(|_| ApiError::Internal)?;
    Ok(png)
}

/// The preview of an attached picture: its size (from the header, even
/// past the limits) and a thumbnail within [`PREVIEW_PX`]. Runs on a
/// blocking thread; never fails, a picture it cannot read has no preview.
pub fn preview(upload: &[u8]) -> Preview {
    let mut out = Preview::default();
    if let Ok(reader) = ImageReader::new(Cursor::new(upload)).with_guessed_format() {
        if let Ok((w, h)) = reader.into_dimensions() {
            (out.width, out.height) = (Some(w), Some(h));
        }
    }
    let Ok((picture, orientation)) = decode(upload, PREVIEW_FORMATS) else {
        return out;
    };
    // Scaled down only: a small picture is its own preview.
    let mut small = if picture.width() > PREVIEW_PX || picture.height() > PREVIEW_PX {
        picture.thumbnail(PREVIEW_PX, PREVIEW_PX)
    } else {
        picture
    };
    if let Some(o) = orientation {
        small.apply_orientation(o);
        // Upright: a quarter turn swaps the sides.
        let (w, h) = (out.width, out.height);
        if matches!(
            o,
            image::metadata::Orientation::Rotate90
                | image::metadata::Orientation::Rotate270
                | image::metadata::Orientation::Rotate90FlipH
                | image::metadata::Orientation::Rotate270FlipH
        ) {
            (out.width, out.height) = (h, w);
        }
    }
    out.png = png(&small).ok();
    out
}

/// A JPEG without its metadata: every APP1 (EXIF, XMP: camera, time,
/// location) and APP13 (IPTC) segment dropped, the picture's bytes
/// untouched. Only the orientation is kept (in a minimal EXIF of its own),
/// so a phone's photo still shows upright. `None` if it is not a JPEG
/// img-parts can read, or has nothing to drop.
pub fn strip_jpeg_metadata(jpeg: Bytes) -> Option<Bytes> {
    use img_parts::jpeg::{markers, Jpeg};
    use img_parts::ImageEXIF;
    let mut parsed = Jpeg::from_bytes(jpeg).ok()?;
    let has_metadata = parsed
        .segments()
        .iter()
        .any(|s| matches!(s.marker(), markers::APP1 | markers::APP13));
    if !has_metadata {
        return None;
    }
    let orientation = parsed
        .exif()
        .and_then(|exif| image::metadata::Orientation::from_exif_chunk(&exif))
        .filter(|o| *o != image::metadata::Orientation::NoTransforms);
    parsed.remove_segments_by_marker(markers::APP1);
    parsed.remove_segments_by_marker(markers::APP13);
    if let Some(o) = orientation {
        parsed.set_exif(Some(Bytes::from(orientation_exif(o.to_exif()))));
    }
    Some(parsed.encoder().bytes())
}

/// An EXIF block (big-endian TIFF) holding nothing but an orientation.
fn orientation_exif(orientation: u8) -> Vec<u8> {
    let mut exif = b"MM\0\x2a".to_vec();
    exif.extend_from_slice(&8u32.to_be_bytes()); // the first directory
    exif.extend_from_slice(&1u16.to_be_bytes()); // one entry:
    exif.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation,
    exif.extend_from_slice(&3u16.to_be_bytes()); // a SHORT,
    exif.extend_from_slice(&1u32.to_be_bytes()); // one of them,
    exif.extend_from_slice(&[0, orientation, 0, 0]); // its value;
    exif.extend_from_slice(&0u32.to_be_bytes()); // no next directory.
    exif
}

/// The largest centred square of `picture`, scaled to [`AVATAR_PX`]²,
/// without copying the picture first (it may be 64 MiB).
fn centre_square(picture: &DynamicImage) -> DynamicImage {
    let (w, h) = (picture.width(), picture.height());
    let side = w.min(h);
    let (x, y) = ((w - side) / 2, (h - side) / 2);
    macro_rules! scaled {
        ($buffer:expr) => {
            DynamicImage::from(image::imageops::thumbnail(
                &*image::imageops::crop_imm($buffer, x, y, side, side),
                AVATAR_PX,
                AVATAR_PX,
            ))
        };
    }
    match picture {
        DynamicImage::ImageLuma8(b) => scaled!(b),
        DynamicImage::ImageLumaA8(b) => scaled!(b),
        DynamicImage::ImageRgb8(b) => scaled!(b),
        DynamicImage::ImageRgba8(b) => scaled!(b),
        DynamicImage::ImageLuma16(b) => scaled!(b),
        DynamicImage::ImageLumaA16(b) => scaled!(b),
        DynamicImage::ImageRgb16(b) => scaled!(b),
        DynamicImage::ImageRgba16(b) => scaled!(b),
        DynamicImage::ImageRgb32F(b) => scaled!(b),
        DynamicImage::ImageRgba32F(b) => scaled!(b),
        // A kind of pixel added to the crate later: converted first.
        other => scaled!(&other.to_rgba8()),
    }
}

/// The client's reason for a decoding error: over the limits, or damaged.
fn why(e: &image::ImageError, too_big: &'static str, damaged: &'static str) -> ApiError {
    match e {
        image::ImageError::Limits(_) => ApiError::InvalidImage(too_big),
        _ => ApiError::InvalidImage(damaged),
    }
}

#[cfg(test)]
mod proptests {
    //! Uploads are network input: a damaged or hostile picture must be an
    //! `invalid_image`, never a panic, and a good one a 128 px PNG.

    use proptest::prelude::*;

    use super::*;

    /// A small picture of each accepted format.
    fn samples() -> Vec<Vec<u8>> {
        let img =
            image::RgbImage::from_fn(37, 23, |x, y| image::Rgb([x as u8 * 6, y as u8 * 9, 80]));
        [ImageFormat::Png, ImageFormat::Jpeg, ImageFormat::WebP]
            .into_iter()
            .map(|format| {
                let mut out = Cursor::new(Vec::new());
                DynamicImage::ImageRgb8(img.clone())
                    .write_to(&mut out, format)
                    .expect("encode a sample");
                out.into_inner()
            })
            .collect()
    }

    #[test]
    fn a_jpeg_keeps_its_orientation_and_loses_the_rest_of_its_metadata() {
        use img_parts::jpeg::Jpeg;
        use img_parts::ImageEXIF;
        let mut exif = orientation_exif(6);
        exif.extend_from_slice(b"where the photo was taken");
        let mut jpeg = Jpeg::from_bytes(samples().swap_remove(1).into()).expect("a JPEG");
        jpeg.set_exif(Some(exif.into()));
        let with = jpeg.encoder().bytes();
        let stripped = strip_jpeg_metadata(with.clone()).expect("stripped");
        let found = |b: &[u8]| b.windows(5).any(|w| w == b"where");
        assert!(found(&with) && !found(&stripped));
        let parsed = Jpeg::from_bytes(stripped.clone()).expect("still a JPEG");
        assert_eq!(
            parsed
                .exif()
                .and_then(|e| image::metadata::Orientation::from_exif_chunk(&e)),
            Some(image::metadata::Orientation::Rotate90)
        );
        assert!(image::load_from_memory(&stripped).is_ok());
        // Nothing to strip: left alone.
        assert!(strip_jpeg_metadata(Bytes::from(samples().swap_remove(1))).is_none());
    }

    #[test]
    fn every_accepted_format_becomes_a_square_png() {
        for sample in samples() {
            let png = thumbnail(&sample).expect("a good picture is accepted");
            let made = image::load_from_memory(&png).expect("the thumbnail decodes");
            assert_eq!(
                (made.width(), made.height(), image::guess_format(&png).ok()),
                (AVATAR_PX, AVATAR_PX, Some(ImageFormat::Png))
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn damaged_pictures_are_refused_without_panic(
            which in 0usize..3,
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = samples().swap_remove(which);
            for (at, byte) in edits {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            if let Ok(png) = thumbnail(&bytes) {
                prop_assert_eq!(image::guess_format(&png).ok(), Some(ImageFormat::Png));
            }
        }

        #[test]
        fn any_bytes_are_refused_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = thumbnail(&bytes);
            let _ = preview(&bytes);
            let _ = strip_jpeg_metadata(Bytes::from(bytes));
        }

        #[test]
        fn damaged_jpegs_are_stripped_or_left_without_panic(
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = samples().swap_remove(1);
            for (at, byte) in edits {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            let _ = preview(&bytes);
            if let Some(stripped) = strip_jpeg_metadata(Bytes::from(bytes)) {
                prop_assert!(stripped.len() >= 2);
            }
        }
    }
}
