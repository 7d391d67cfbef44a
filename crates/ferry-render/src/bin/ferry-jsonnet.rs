//! `ferry-jsonnet`: the Jsonnet worker as a binary of its own. The renderer sends it one
//! evaluation on stdin and reads the result on stdout, and can kill it (timeout, memory and
//! output limits) where an in-process evaluation could not be stopped. ferry's own binaries
//! run themselves as the worker instead (`ferry_render::JsonnetWorker::this_executable`).

fn main() {
    ferry_render::jsonnet_worker_main();
}
