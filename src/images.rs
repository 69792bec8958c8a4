//! Pictures from clients, made safe to keep and serve: the format read from
//! the bytes (PNG, JPEG or WebP, whatever the request claims), decoded
//! within limits of size and memory, cut to a centred square and scaled to
//! a small PNG thumbnail. Decoding runs on blocking threads, a few at a
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

    /// The avatar made of an uploaded picture: a PNG of
    /// [`AVATAR_PX`]² pixels. `invalid_image` for anything that is not a
    /// PNG, JPEG or WebP within the limits; `busy` when the decoders stay
    /// taken for [`MAX_WAIT`].
    pub async fn avatar(&self, slot: UploadSlot, upload: Bytes) -> Result<Vec<u8>, ApiError> {
        let decoder = tokio::time::timeout(MAX_WAIT, self.decoders.clone().acquire_owned())
            .await
            .map_err(|_| ApiError::Busy)?
            .map_err(|_| ApiError::Internal)?;
        // The permits go with the work: a client that hangs up does not
        // stop a decode, so it must not free its place either.
        tokio::task::spawn_blocking(move || {
            let made = thumbnail(&upload);
            drop((decoder, slot, upload));
            made
        })
        .await
        .map_err(|_| ApiError::Internal)?
    }
}

/// Decodes `upload` within the limits, crops its centred square, scales
/// it to [`AVATAR_PX`] and encodes it as PNG. Runs on a blocking thread.
fn thumbnail(upload: &[u8]) -> Result<Vec<u8>, ApiError> {
    let format = image::guess_format(upload)
        .map_err(|_| ApiError::InvalidImage("it is not a PNG, JPEG or WebP picture"))?;
    if !matches!(
        format,
        ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP
    ) {
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
    // A phone's photo is stored sideways with a note to turn it; the
    // centre square turns with the picture, so the thumbnail is turned.
    let orientation = decoder.orientation().ok();
    let picture = DynamicImage::from_decoder(decoder).map_err(|e| why(&e, too_big, damaged))?;
    let mut square = centre_square(&picture);
    if let Some(o) = orientation {
        square.apply_orientation(o);
    }
    let mut png = Vec::new();
    PngEncoder::new_with_quality(&mut png, CompressionType::Best, FilterType::Adaptive)
        .write_image(
            square.to_rgba8().as_raw(),
            AVATAR_PX,
            AVATAR_PX,
            image::ExtendedColorType::Rgba8,
        )
        .map_err(|_| ApiError::Internal)?;
    Ok(png)
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
        }
    }
}
