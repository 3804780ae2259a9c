import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A process started by a test (the `stampede` tool, or a test worker), whose output and
/// error lines the test can wait for and whose standard input it can write. It is killed
/// when the test is done with it.
public final class WorkerProcess: Sendable {
    private let process: Process
    private let lines = LineBuffer()
    private let errorLines = LineBuffer()
    private let input: FileHandle

    /// Output split into lines as it arrives.
    private final class LineBuffer: Sendable {
        private let state = Mutex<(complete: [String], partial: String)>(([], ""))
        private let ended = Atomic(false)

        /// The pipe reached its end: every line the process wrote is here.
        var isEnded: Bool { ended.load(ordering: .acquiring) }
        func end() { ended.store(true, ordering: .releasing) }

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

    /// The executables the tests start.
    public enum Executable: String, Sendable {
        /// The `stampede` tool.
        case tool = "stampede"
        /// The test workers: a cache or a lock in another process.
        case testWorker = "StampedeTestWorker"
    }

    /// `executable` as built beside the test bundle (`swift build --build-tests` builds it).
    public static func path(of executable: Executable = .tool) throws -> URL {
        let folder = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [folder, folder.deletingLastPathComponent()].map { $0.appendingPathComponent(executable.rawValue) }
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
            throw WorkerError(description: "\(executable.rawValue) is not built next to the tests; run `swift build --build-tests` first")
        }
        return found
    }

    public struct WorkerError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Starts `EXECUTABLE ARGUMENTS...`, with `environment` added to this process's.
    public init(_ arguments: [String], environment: [String: String] = [:], executable: Executable = .tool) throws {
        process = Process()
        process.executableURL = try Self.path(of: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let output = Pipe(), errors = Pipe(), input = Pipe()
        // The test's ends must not leak into processes started later (a leaked write end
        // would keep this one's standard input open after the test closed it).
        for handle in [output.fileHandleForReading, errors.fileHandleForReading, input.fileHandleForWriting] {
            _ = fcntl(handle.fileDescriptor, F_SETFD, FD_CLOEXEC)
        }
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = input
        self.input = input.fileHandleForWriting
        for (pipe, buffer) in [(output, lines), (errors, errorLines)] {
            pipe.fileHandleForReading.readabilityHandler = { handle in
                let data = handle.availableData
                if data.isEmpty {
                    handle.readabilityHandler = nil
                    buffer.end()
                } else {
                    buffer.append(String(decoding: data, as: UTF8.self))
                }
            }
        }
        try process.run()
        try? input.fileHandleForReading.close()
    }

    /// The complete lines printed so far, without their newlines.
    public var output: [String] {
        lines.complete
    }

    /// The complete lines printed on standard error so far.
    public var errorOutput: [String] {
        errorLines.complete
    }

    /// Writes `line` and a newline to the process's standard input.
    public func send(line: String) throws {
        try input.write(contentsOf: Data((line + "\n").utf8))
    }

    /// Closes the process's standard input.
    public func closeInput() {
        try? input.close()
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

    /// Waits for the process to exit, and for its last output and error lines to be read
    /// (the pipes are read apart, and may lag the exit); returns its status, or `nil` after
    /// `limit`.
    ///
    /// The pipes' ends come when every copy of their write ends is closed. A process that
    /// another test started at the same moment can hold a copy (it is inherited between pipe
    /// creation and launch), so the wait for the ends is capped at a second. The lines the
    /// exited process wrote are then in the pipe and are read within milliseconds, on a
    /// machine that is not starved for that long.
    public func exitStatus(within limit: Duration = .seconds(60)) async -> Int32? {
        let deadline = ContinuousClock.now + limit
        while process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        if process.isRunning { return nil }
        let drained = ContinuousClock.now + .seconds(1)
        while !(lines.isEnded && errorLines.isEnded) && ContinuousClock.now < drained {
            try? await Task.sleep(for: .milliseconds(5))
        }
        return process.terminationStatus
    }

    public var pid: pid_t { process.processIdentifier }
    public func signal(_ signal: Int32) { sendSignal(signal, to: process.processIdentifier) }

    deinit {
        if process.isRunning { sendSignal(SIGKILL, to: process.processIdentifier) }
    }
}

/// `kill(2)`, named apart from ``WorkerProcess/signal(_:)``.
private func sendSignal(_ signal: Int32, to pid: pid_t) {
    _ = kill(pid, signal)
}
