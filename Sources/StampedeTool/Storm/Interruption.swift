import Dispatch
import EmbeddedRedis
import Foundation
import Synchronization

/// What an interrupted run (a storm, a reliability check; Ctrl-C, or SIGTERM) must undo
/// before it exits: kill its workers, delete its keys from the user's Redis, stop its
/// throwaway server.
final class Interruption: Sendable {
    static let shared = Interruption()

    private struct State {
        var workers: Set<pid_t> = []
        var servers: [RedisServer] = []
        /// Deletes the storm's keys; `false` when it could not.
        var deleteKeys: (@Sendable () async -> Bool)?
        /// What the keys are called, and the prefix they live under, for the last line.
        var keysName = "the storm's keys"
        var keysPrefix = StormKeys.prefix
        var interrupted = false
    }
    private let state = Mutex(State())
    private nonisolated(unsafe) static var sources: [any DispatchSourceSignal] = []

    /// Takes over SIGINT and SIGTERM for the rest of the process.
    func install() {
        for signalNumber in [SIGINT, SIGTERM] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { self.interrupt(by: signalNumber) }
            source.resume()
            Self.sources.append(source)
        }
    }

    func register(_ worker: pid_t) { state.withLock { _ = $0.workers.insert(worker) } }
    func unregister(_ worker: pid_t) { state.withLock { _ = $0.workers.remove(worker) } }
    func stopOnInterrupt(_ servers: [RedisServer]) { state.withLock { $0.servers = servers } }
    func onInterrupt(
        deleteKeys: (@Sendable () async -> Bool)?, named name: String = "the storm's keys", under prefix: String = StormKeys.prefix
    ) {
        state.withLock { state in
            state.deleteKeys = deleteKeys
            state.keysName = name
            state.keysPrefix = prefix
        }
    }

    /// Whether an interrupt is being handled: failures it causes (workers killed under a
    /// running storm) are not reported, the handler exits the process.
    var isInterrupted: Bool { state.withLock { $0.interrupted } }

    private func interrupt(by signalNumber: Int32) {
        // A second signal (SIGTERM after SIGINT, say) leaves the clean-up to the first.
        guard let (workers, servers, deleteKeys, keysName, keysPrefix) = state.withLock({ state -> (Set<pid_t>, [RedisServer], (@Sendable () async -> Bool)?, String, String)? in
            if state.interrupted { return nil }
            state.interrupted = true
            return (state.workers, state.servers, state.deleteKeys, state.keysName, state.keysPrefix)
        }) else { return }
        for worker in workers { kill(worker, SIGKILL) }
        // Gone before the keys are deleted, so that no late write of theirs lands after.
        let deadline = ContinuousClock.now + .seconds(2)
        while workers.contains(where: isRunning) && ContinuousClock.now < deadline { usleep(10_000) }
        var undone = ["stopped \(workers.count) worker process\(workers.count == 1 ? "" : "es")"]
        if let deleteKeys {
            let done = DispatchSemaphore(value: 0)
            let deleted = Mutex(false)
            Task {
                let result = await deleteKeys()
                deleted.withLock { $0 = result }
                done.signal()
            }
            let inTime = done.wait(timeout: .now() + 5) == .success
            undone.append(inTime && deleted.withLock { $0 } ? "deleted \(keysName)" : "could not delete \(keysName) (they are under '\(keysPrefix)')")
        }
        if !servers.isEmpty {
            for server in servers { server.stop() }
            undone.append(servers.count == 1 ? "stopped the throwaway redis-server" : "stopped the throwaway cluster's \(servers.count) redis-servers")
        }
        try? FileHandle.standardError.write(contentsOf: Data("\nstampede: interrupted; \(undone.joined(separator: ", ")).\n".utf8))
        exit(128 + signalNumber)
    }
}
