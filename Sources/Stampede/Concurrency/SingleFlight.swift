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
    private typealias Flight = OneShot<Result<Value, any Error>>

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
    nonisolated(nonsending) public func run(
        key: Key,
        quickly: nonisolated(nonsending) () async -> Value?,
        operation: @escaping @Sendable () async throws -> Value
    ) async throws -> (value: Value, shared: Bool) {
        let (flight, isFirst) = flights.withLock { flights -> (Flight, Bool) in
            if let running = flights[key] { return (running, false) }
            let flight = Flight()
            flights[key] = flight
            return (flight, true)
        }
        guard isFirst else { return (try await result(of: flight), true) }
        if let value = await quickly() {
            end(flight, key: key, with: .success(value))
            return (value, false)
        }
        Task {
            end(flight, key: key, with: await Result { try await operation() })
        }
        return (try await result(of: flight), false)
    }

    /// The flight's result; a cancelled caller leaves with `CancellationError`.
    private func result(of flight: Flight) async throws -> Value {
        guard let result = await flight.wait() else { throw CancellationError() }
        return try result.get()
    }

    /// Frees the key before waking the callers, so that a caller acting on the result starts
    /// a new flight rather than joining this finished one.
    private func end(_ flight: Flight, key: Key, with result: Result<Value, any Error>) {
        flights.withLock { flights in
            if flights[key] === flight { flights[key] = nil }
        }
        flight.finish(result)
    }

    /// Lets the next call for `key` start a new operation even while one is in flight (for
    /// example after an invalidation made its result stale). Callers already waiting still
    /// get the old operation's result.
    public func forget(_ key: Key) {
        flights.withLock { _ = $0.removeValue(forKey: key) }
    }

    /// How many keys have an operation in flight.
    public var count: Int { flights.withLock { $0.count } }

    /// How many callers wait for the operation in flight for `key` (for tests).
    func waiting(for key: Key) -> Int {
        flights.withLock { $0[key] }?.waiting ?? 0
    }
}
