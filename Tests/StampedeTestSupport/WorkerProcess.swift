import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A `stampede` process started by a test (a worker mode of the tool), whose output lines
/// the test can wait for. It is killed when the test is done with it.
public final class WorkerProcess: Sendable {
    private let process: Process
    private let lines = LineBuffer()

    /// Output split into lines as it arrives.
    private final class LineBuffer: Sendable {
        private let state = Mutex<(complete: [String], partial: String)>(([], ""))

        func append(_ text: String) {
            state.withLock { state in
                var rest = Substring(state.partial + text)
                while let newline = rest.firstIndex(of: "\n") {
                    state.complete.append(String(rest[..<newline]))
                    rest = rest[rest.index(after: newline)...]
                }
                state.partial = String(rest)
            }
        }

        var complete: [String] { state.withLock { $0.complete } }
    }

    /// The `stampede` executable built beside the test bundle (`swift build --build-tests`
    /// builds it).
    public static func executable() throws -> URL {
        let folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [folder, folder.deletingLastPathComponent()].map { $0.appendingPathComponent("stampede") }
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw WorkerError(description: "the stampede executable is not built next to the tests; run `swift build --build-tests` first")
        }
        return found
    }

    public struct WorkerError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Starts `stampede ARGUMENTS...`.
    public init(_ arguments: [String]) throws {
        process = Process()
        process.executableURL = try Self.executable()
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.standardError
        let lines = self.lines
        output.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if data.isEmpty {
                handle.readabilityHandler = nil
            } else {
                lines.append(String(decoding: data, as: UTF8.self))
            }
        }
        try process.run()
    }

    /// The complete lines printed so far, without their newlines.
    public var output: [String] {
        lines.complete
    }

    /// Waits for a line that starts with `prefix`; returns it, or `nil` after `limit`.
    public func line(startingWith prefix: String, within limit: Duration = .seconds(20)) async -> String? {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if let line = output.first(where: { $0.hasPrefix(prefix) }) { return line }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return output.first(where: { $0.hasPrefix(prefix) })
    }

    /// Waits for the process to exit; returns its status, or `nil` after `limit`.
    public func exitStatus(within limit: Duration = .seconds(60)) async -> Int32? {
        let deadline = ContinuousClock.now + limit
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        return process.isRunning ? nil : process.terminationStatus
    }

    public var pid: pid_t { process.processIdentifier }
    public func signal(_ signal: Int32) { Glibc.kill(process.processIdentifier, signal) }

    deinit {
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
    }
}
