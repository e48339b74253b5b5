//! Renditions the gateway makes itself: page images, thumbnails, low-resolution copies, and the
//! identity watermarks stamped on what a recipient sees or takes away.

pub mod watermark;
