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
    /// One operation in flight and the callers waiting for it. Its fields are guarded by
    /// the SingleFlight's lock: one lock for the map and every flight makes a hit that
    /// starts and ends a flight take it twice.
    private final class Flight: @unchecked Sendable {
        /// The id of the caller that started it, who ends it.
        let leader: Int
        /// Set once, when the operation ends.
        var result: Result<Value, any Error>?
        /// By id, so that a cancelled caller leaves in O(1) under the lock every key shares.
        var waiters: [Int: UnsafeContinuation<Value, any Error>] = [:]

        init(leader: Int) { self.leader = leader }
    }

    /// A key's entry in the map. A first caller whose quick try answers before anyone joins
    /// (the common hit) needs no ``Flight``: it is made by the first caller to join, or by
    /// the first caller itself when it must wait for the operation.
    private enum Slot {
        case leaderOnly(Int)
        case flight(Flight)
    }

    private struct State {
        /// The operations in flight by key. Written when a flight starts, when it ends, and
        /// by ``forget(_:)``.
        var flights: [Key: Slot] = [:]
        /// Flights that ``forget(_:)`` took off the map while callers waited on them, by
        /// leader, so that the leader still finds them to hand over its result.
        var forgotten: [Int: Flight] = [:]
        var nextWaiter = 0

        /// Takes the flight that `leader` started off the map (or out of the forgotten ones):
        /// `nil` when nobody joined it.
        mutating func removeFlight(of leader: Int, key: Key) -> Flight? {
            // Through the slot in place: the key is hashed once, not once to look and once
            // to remove (a hit starts and ends a flight, so this is half its hashing).
            let found = Self.take(&flights[key], of: leader)
            return found.wasOnMap ? found.flight : forgotten.removeValue(forKey: leader)
        }

        private static func take(_ slot: inout Slot?, of leader: Int) -> (wasOnMap: Bool, flight: Flight?) {
            switch slot {
            case .leaderOnly(let id)? where id == leader:
                slot = nil
                return (true, nil)
            case .flight(let flight)? where flight.leader == leader:
                slot = nil
                return (true, flight)
            default:
                return (false, nil)
            }
        }

        /// A caller arrives for the key whose slot this is: the first one leads (`nil`),
        /// later ones get the flight to join, made by the first of them to join.
        static func arrive(_ slot: inout Slot?, as id: Int) -> Flight? {
            switch slot {
            case nil:
                slot = .leaderOnly(id)
                return nil
            case .leaderOnly(let leader)?:
                let flight = Flight(leader: leader)
                slot = .flight(flight)
                return flight
            case .flight(let flight)?:
                return flight
            }
        }
    }

    private let state = Mutex(State())

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
        try await run(key: key, quickly: quickly, makeOperation: { operation })
    }

    /// As ``run(key:quickly:operation:)``, with the operation built only when it is needed:
    /// callers that join, and first callers whose quick try succeeds, allocate no closure
    /// for it.
    nonisolated(nonsending) func run(
        key: Key,
        quickly: nonisolated(nonsending) () async -> Value?,
        makeOperation: () -> @Sendable () async throws -> Value
    ) async throws -> (value: Value, shared: Bool) {
        // Every caller gets its id here: a joiner waits under it, and the first caller leads
        // under it (and waits under it too if its quick try fails).
        let (joined, id) = state.withLock { state -> (Flight?, Int) in
            state.nextWaiter &+= 1
            let id = state.nextWaiter
            // In place, so the key is hashed once.
            return (State.arrive(&state.flights[key], as: id), id)
        }
        if let joined { return (try await wait(for: joined, as: id), true) }
        if let value = await quickly() {
            end(leader: id, key: key, with: .success(value))
            return (value, false)
        }
        // The first caller waits for the operation like a joiner: it needs the flight now.
        let flight = state.withLock { state -> Flight in
            switch state.flights[key] {
            case .leaderOnly(let leader)? where leader == id:
                let flight = Flight(leader: id)
                state.flights[key] = .flight(flight)
                return flight
            case .flight(let flight)? where flight.leader == id:
                return flight
            default:
                // Forgotten meanwhile: off the map, where the leader's end still finds it.
                if let flight = state.forgotten[id] { return flight }
                let flight = Flight(leader: id)
                state.forgotten[id] = flight
                return flight
            }
        }
        let operation = makeOperation()
        Task {
            let result: Result<Value, any Error>
            do { result = .success(try await operation()) } catch { result = .failure(error) }
            end(leader: id, key: key, with: result)
        }
        return (try await wait(for: flight, as: id), false)
    }

    /// Waits for the flight's result; a cancelled caller leaves with `CancellationError`.
    private func wait(for flight: Flight, as id: Int) async throws -> Value {
        try await withTaskCancellationHandler {
            // Unsafe rather than checked (which allocates per call): a waiter is resumed
            // once, by whoever takes it out of `waiters` under the lock, or here at once.
            try await withUnsafeThrowingContinuation { continuation in
                let ready: Result<Value, any Error>? = state.withLock { _ in
                    if let result = flight.result { return result }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    flight.waiters[id] = continuation
                    return nil
                }
                if let ready { continuation.resume(with: ready) }
            }
        } onCancel: {
            let waiter = state.withLock { _ in flight.waiters.removeValue(forKey: id) }
            waiter?.resume(throwing: CancellationError())
        }
    }

    /// Frees the key before waking the callers, so that a caller acting on the result starts
    /// a new flight rather than joining this finished one.
    private func end(leader: Int, key: Key, with result: Result<Value, any Error>) {
        let waiters = state.withLock { state -> Dictionary<Int, UnsafeContinuation<Value, any Error>>.Values in
            guard let flight = state.removeFlight(of: leader, key: key) else { return [:].values }
            flight.result = result
            defer { flight.waiters = [:] }
            return flight.waiters.values
        }
        for waiter in waiters { waiter.resume(with: result) }
    }

    /// Lets the next call for `key` start a new operation even while one is in flight (for
    /// example after an invalidation made its result stale). Callers already waiting still
    /// get the old operation's result.
    public func forget(_ key: Key) {
        state.withLock { state in
            if case .flight(let flight)? = state.flights.removeValue(forKey: key) { state.forgotten[flight.leader] = flight }
        }
    }

    /// How many keys have an operation in flight.
    public var count: Int { state.withLock { $0.flights.count } }

    /// How many flights were forgotten and have not ended yet (for tests).
    var forgottenCount: Int { state.withLock { $0.forgotten.count } }

    /// How many callers wait for the operation in flight for `key` (for tests).
    func waiting(for key: Key) -> Int {
        state.withLock { state in
            guard case .flight(let flight)? = state.flights[key] else { return 0 }
            return flight.waiters.count
        }
    }
}
