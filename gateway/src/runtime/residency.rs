//! Giving back the pages a component's artifact touched while it was loaded.
//!
//! Wasmtime maps a precompiled `.cwasm` privately and reads its metadata, type tables and
//! address maps while deserializing and linking it; those reads fault in file pages that stay in
//! the gateway's resident set for as long as the component is loaded, although what they hold
//! now lives in wasmtime's own structures. For a node carrying thousands of idle tenants, each
//! with its own build, that was most of the memory an idle function cost (about 388 KiB of
//! 505 KiB, docs/benchmarks.md). Once a version is linked, the loader asks the kernel to reclaim
//! those pages (`MADV_PAGEOUT`): clean file pages are dropped and fault back in from the page
//! cache or the file when the code first runs; a page wasmtime wrote to is kept (without swap)
//! or swapped, never lost, so this changes memory use and never contents.

/// Asks the kernel to reclaim the resident pages of `component`'s mapped artifact, once it is
/// linked. Only for a component loaded from a `.cwasm` file: one compiled in memory is
/// anonymous memory, which has no file to fault back from. Advisory: does nothing where the
/// kernel lacks `MADV_PAGEOUT` (before Linux 5.4) or off Linux.
pub(crate) fn reclaim_artifact_pages(component: &wasmtime::component::Component) {
    #[cfg(target_os = "linux")]
    linux::page_out(component.image_range());
    #[cfg(not(target_os = "linux"))]
    let _ = component;
}

#[cfg(target_os = "linux")]
mod linux {
    use std::ops::Range;

    #[expect(
        unsafe_code,
        reason = "madvise takes a raw address range; MADV_PAGEOUT never changes its contents"
    )]
    pub(super) fn page_out(image: Range<*const u8>) {
        let page = rustix::param::page_size();
        // Only whole pages inside the image: the first page boundary at or after its start, the
        // last at or before its end.
        let start = (image.start as usize).next_multiple_of(page);
        let end = image.end as usize / page * page;
        if end <= start {
            return;
        }
        // SAFETY: the range lies inside the mapping wasmtime made for this component, which the
        // caller holds alive. MADV_PAGEOUT only reclaims: a clean file page is read again on the
        // next access and a dirty private page is written to swap or left resident, so every
        // later read sees the same bytes.
        let advised = unsafe {
            rustix::mm::madvise(
                start as *mut std::ffi::c_void,
                end - start,
                rustix::mm::Advice::LinuxPageOut,
            )
        };
        if let Err(error) = advised {
            tracing::debug!(%error, "MADV_PAGEOUT on a loaded artifact was refused");
        }
    }
}
