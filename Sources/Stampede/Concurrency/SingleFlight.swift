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
    fileprivate typealias Flight = OneShot<Result<Value, any Error>>

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
        let arrival = arrive(key)
        guard arrival.leads else { return (try await result(of: arrival), true) }
        if let value = await quickly() {
            finish(arrival, with: .success(value))
            return (value, false)
        }
        launch(arrival, operation)
        return (try await result(of: arrival), false)
    }

    // The steps of `run`, for a caller that builds the operation only when it leads: a
    // caller that joins, or whose quick try answers, then makes no closure for it.

    /// A caller's place in the flight for its key.
    struct Arrival: Sendable {
        fileprivate let key: Key
        fileprivate let flight: Flight
        /// Whether this caller started the flight: it must end it, with
        /// ``finish(_:with:)`` or ``launch(_:_:)``.
        let leads: Bool
    }

    /// Joins the flight for `key`, or starts one that this caller leads.
    func arrive(_ key: Key) -> Arrival {
        flights.withLock { flights in
            if let running = flights[key] { return Arrival(key: key, flight: running, leads: false) }
            let flight = Flight()
            flights[key] = flight
            return Arrival(key: key, flight: flight, leads: true)
        }
    }

    /// Runs `operation` in a task of its own, whose result ends the flight.
    func launch(_ arrival: Arrival, _ operation: @escaping @Sendable () async throws -> Value) {
        Task {
            finish(arrival, with: await Result { try await operation() })
        }
    }

    /// The flight's result; a cancelled caller leaves with `CancellationError`.
    func result(of arrival: Arrival) async throws -> Value {
        guard let result = await arrival.flight.wait() else { throw CancellationError() }
        return try result.get()
    }

    /// Ends the flight. Frees the key before waking the callers, so that a caller acting on
    /// the result starts a new flight rather than joining this finished one.
    func finish(_ arrival: Arrival, with result: Result<Value, any Error>) {
        flights.withLock { flights in
            if flights[arrival.key] === arrival.flight { flights[arrival.key] = nil }
        }
        arrival.flight.finish(result)
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
