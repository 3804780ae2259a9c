import ArgumentParser
import Foundation

/// The worker processes of the multi-process tests: a cache or a lock used from another
/// process than the test's, which the test can kill, pause and count.
@main
struct TestWorker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stampede-test-worker",
        abstract: "Worker processes for Stampede's multi-process tests.",
        subcommands: [CacheWorker.self, MutexWorker.self, NearReaderWorker.self]
    )
}

/// Prints a line and flushes it, so that the test reading the pipe sees it at once.
func say(_ line: String) {
    try? FileHandle.standardOutput.write(contentsOf: Data((line + "\n").utf8))
}

extension Duration {
    var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
