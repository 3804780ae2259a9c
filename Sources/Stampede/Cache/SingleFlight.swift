import Synchronization

/// Runs one operation per key at a time in this process; concurrent callers for the same key
/// share its result.
///
/// ```swift
/// let flights = SingleFlight<String, Profile>()
/// let (profile, shared) = try await flights.run(key: "user:42") { try await database.loadProfile(42) }
/// ```
///
/// - The first caller for a key starts the operation; callers that arrive while it runs
///   join it. Every one of them gets its value, or its error.
/// - The operation runs in a task of its own (inheriting the first caller's priority and
///   task-local values), so a caller that is cancelled only stops waiting: the operation goes
///   on for the others, and finishes even if every caller has left.
/// - Once it finishes, the key is free again: the next call starts a new operation.
public final class SingleFlight<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    /// One operation in flight and the callers waiting for it.
    private final class Flight: Sendable {
        struct State {
            /// Set once, when the operation ends.
            var result: Result<Value, any Error>?
            var waiters: [Int: CheckedContinuation<Value, any Error>] = [:]
            var nextWaiter = 0
        }
        /// Guards the result and the waiters; written by callers (joining, leaving) and by
        /// the operation's task (finishing).
        let state = Mutex(State())

        /// Waits for the result; a cancelled caller leaves with `CancellationError`.
        func wait() async throws -> Value {
            let id = state.withLock { state -> Int in
                state.nextWaiter += 1
                return state.nextWaiter
            }
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    let ready: Result<Value, any Error>? = state.withLock { state in
                        if let result = state.result { return result }
                        if Task.isCancelled { return .failure(CancellationError()) }
                        state.waiters[id] = continuation
                        return nil
                    }
                    if let ready { continuation.resume(with: ready) }
                }
            } onCancel: {
                let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
                waiter?.resume(throwing: CancellationError())
            }
        }

        func finish(_ result: Result<Value, any Error>) {
            let waiters = state.withLock { state in
                state.result = result
                defer { state.waiters = [:] }
                return Array(state.waiters.values)
            }
            for waiter in waiters { waiter.resume(with: result) }
        }
    }

    /// The operations in flight by key. Written when a flight starts, when it ends, and by
    /// ``forget(_:)``.
    private let flights = Mutex<[Key: Flight]>([:])

    public init() {}

    /// Runs `operation` for `key`, or joins the one already running for it.
    ///
    /// - Returns: the operation's value, and whether this caller joined an operation another
    ///   caller started (`shared`).
    /// - Throws: what the operation throws (to every caller that shares it), or
    ///   `CancellationError` when this caller's task is cancelled while it waits.
    public func run(
        key: Key,
        operation: @escaping @Sendable () async throws -> Value
    ) async throws -> (value: Value, shared: Bool) {
        try await run(key: key, quickly: { nil }, operation: operation)
    }

    /// As ``run(key:operation:)``, with a quick first try that the first caller runs in its
    /// own task (no task is started for it): when it returns a value, that is everyone's
    /// result; when it returns `nil`, `operation` runs in a task of its own as usual.
    ///
    /// Use it for a step that is short and cannot be interrupted (one network round trip),
    /// so that the common case costs no task while callers that arrive meanwhile still join.
    public func run(
        key: Key,
        quickly: () async -> Value?,
        operation: @escaping @Sendable () async throws -> Value
    ) async throws -> (value: Value, shared: Bool) {
        let (flight, isNew) = flights.withLock { flights -> (Flight, Bool) in
            if let flight = flights[key] { return (flight, false) }
            let flight = Flight()
            flights[key] = flight
            return (flight, true)
        }
        guard isNew else { return (try await flight.wait(), true) }
        if let value = await quickly() {
            end(flight, for: key, with: .success(value))
            return (value, false)
        }
        Task {
            let result: Result<Value, any Error>
            do { result = .success(try await operation()) } catch { result = .failure(error) }
            end(flight, for: key, with: result)
        }
        return (try await flight.wait(), false)
    }

    /// Frees the key before waking the callers, so that a caller acting on the result starts
    /// a new flight rather than joining this finished one.
    private func end(_ flight: Flight, for key: Key, with result: Result<Value, any Error>) {
        flights.withLock { flights in
            if flights[key] === flight { flights[key] = nil }
        }
        flight.finish(result)
    }

    /// Lets the next call for `key` start a new operation even while one is in flight (for
    /// example after an invalidation made its result stale). Callers already waiting still
    /// get the old operation's result.
    public func forget(_ key: Key) {
        _ = flights.withLock { $0.removeValue(forKey: key) }
    }

    /// How many keys have an operation in flight.
    public var count: Int { flights.withLock { $0.count } }

    /// How many callers wait for the operation in flight for `key` (for tests).
    func waiting(for key: Key) -> Int {
        guard let flight = flights.withLock({ $0[key] }) else { return 0 }
        return flight.state.withLock { $0.waiters.count }
    }
}
