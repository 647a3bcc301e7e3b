//! File opens as questions: `wasi:filesystem`'s `open-at` is wrapped so
//! the path the guest opens is recorded (live) and checked (replay).
//!
//! The content needs no recording here: granted directories are
//! snapshotted at start (see `setup`), and a replay preopens the snapshot.

use crate::sandbox::Sandbox;
use wasmflow_store::{Event, Question};
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::filesystem::WasiFilesystemView;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    Descriptor, DescriptorFlags, ErrorCode, HostDescriptor, OpenFlags, PathFlags,
};

/// The name wasmtime-wasi registers `wasi:filesystem/types` under; guests
/// importing any 0.2.x resolve to it.
const FILESYSTEM_TYPES: &str = "wasi:filesystem/types@0.2.12";

pub(crate) fn add_to_linker(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut types = linker.instance(FILESYSTEM_TYPES)?;
    types.func_wrap_async(
        "[method]descriptor.open-at",
        |mut store,
         (fd, path_flags, path, open_flags, flags): (
            Resource<Descriptor>,
            PathFlags,
            String,
            OpenFlags,
            DescriptorFlags,
        )| {
            Box::new(async move {
                let sandbox = store.data_mut();
                let question = Question::FileOpen { path: path.clone() };
                // A different file is a different run: stop here.
                let world = sandbox.world();
                if world.recorded(&question, Some)?.is_none() {
                    world.record(Event::FileOpen { path: path.clone() });
                }
                let mut view = sandbox.filesystem();
                let opened =
                    HostDescriptor::open_at(&mut view, fd, path_flags, path, open_flags, flags)
                        .await;
                match opened {
                    Ok(fd) => Ok((Ok::<_, ErrorCode>(fd),)),
                    Err(e) => Ok((Err(e.downcast()?),)),
                }
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
