import Dispatch
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
    private let events = Events()
    private let input: FileHandle

    /// What the process did so far: its output and error lines, whether its pipes ended,
    /// whether it exited. Waiters are woken on every change and check again.
    private final class Events: Sendable {
        struct State {
            var lines = LineSplitter()
            var errorLines = LineSplitter()
            var outputEnded = false
            var errorEnded = false
            var exited = false
            var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
            /// Waiters whose wake-up came before they parked.
            var wokenEarly: Set<Int> = []
            var nextID = 0
        }

        private let state = Mutex(State())

        func read<T>(_ body: (State) -> T) -> T { state.withLock { body($0) } }

        /// Changes the state and wakes every waiter.
        func update(_ body: (inout State) -> Void) {
            let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                body(&state)
                defer { state.waiters = [:] }
                return Array(state.waiters.values)
            }
            for waiter in waiters { waiter.resume() }
        }

        /// What `check` finds once it finds something, or `nil` when `deadline` passes (or
        /// the task is cancelled) first.
        func wait<T>(until deadline: ContinuousClock.Instant, for check: (State) -> T?) async -> T? {
            while true {
                if let found = read(check) { return found }
                let remaining = deadline - ContinuousClock.now
                if remaining <= .zero || Task.isCancelled { return nil }
                let id = state.withLock { state -> Int in
                    state.nextID += 1
                    return state.nextID
                }
                // Woken by the next change, by the deadline, or by cancellation.
                let wake: @Sendable () -> Void = { [self] in
                    state.withLock { state -> CheckedContinuation<Void, Never>? in
                        if let parked = state.waiters.removeValue(forKey: id) { return parked }
                        state.wokenEarly.insert(id)
                        return nil
                    }?.resume()
                }
                let nanoseconds = remaining.components.seconds * 1_000_000_000 + remaining.components.attoseconds / 1_000_000_000
                let timer = DispatchWorkItem(block: wake)
                DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(clamping: nanoseconds)), execute: timer)
                defer { timer.cancel() }
                await withTaskCancellationHandler {
                    await withCheckedContinuation { continuation in
                        let ready = state.withLock { state -> Bool in
                            if check(state) != nil || Task.isCancelled || state.wokenEarly.contains(id) { return true }
                            state.waiters[id] = continuation
                            return false
                        }
                        if ready { continuation.resume() }
                    }
                } onCancel: {
                    wake()
                }
                state.withLock { _ = $0.wokenEarly.remove(id) }
            }
        }
    }

    /// Output split into lines as it arrives.
    struct LineSplitter {
        private(set) var complete: [String] = []
        private var partial = ""

        mutating func append(_ text: String) {
            var rest = Substring(partial + text)
            while let newline = rest.firstIndex(of: "\n") {
                complete.append(String(rest[..<newline]))
                rest = rest[rest.index(after: newline)...]
            }
            partial = String(rest)
        }
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
        let events = self.events
        for (pipe, isOutput) in [(output, true), (errors, false)] {
            pipe.fileHandleForReading.readabilityHandler = { handle in
                let data = handle.availableData
                if data.isEmpty {
                    handle.readabilityHandler = nil
                    events.update { state in
                        if isOutput { state.outputEnded = true } else { state.errorEnded = true }
                    }
                } else {
                    let text = String(decoding: data, as: UTF8.self)
                    events.update { state in
                        if isOutput { state.lines.append(text) } else { state.errorLines.append(text) }
                    }
                }
            }
        }
        process.terminationHandler = { _ in events.update { $0.exited = true } }
        try process.run()
        try? input.fileHandleForReading.close()
    }

    /// The complete lines printed so far, without their newlines.
    public var output: [String] {
        events.read { $0.lines.complete }
    }

    /// The complete lines printed on standard error so far.
    public var errorOutput: [String] {
        events.read { $0.errorLines.complete }
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
        await events.wait(until: ContinuousClock.now + limit) { state in
            state.lines.complete.first { $0.hasPrefix(prefix) }
        }
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
        let process = self.process
        let exited = await events.wait(until: ContinuousClock.now + limit) { state in
            state.exited || !process.isRunning ? true : nil
        }
        guard exited != nil else { return nil }
        _ = await events.wait(until: ContinuousClock.now + .seconds(1)) { state in
            state.outputEnded && state.errorEnded ? true : nil
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
