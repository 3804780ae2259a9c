import Logging
import StampedeRedis
import Synchronization

/// The cache's pub/sub side: one subscription per cache to its namespace's channel, turned
/// into per-key wake-ups for the callers waiting on another process's load.
///
/// One channel per namespace, with the key in the message, rather than one per key: a
/// waiting caller then needs no SUBSCRIBE round trip of its own (the subscription is already
/// there), and the same stream will serve near caches, which must hear every fill and
/// invalidation anyway.
final class CacheEvents: Sendable {
    /// What happened to a key.
    enum Kind: Sendable, Equatable {
        case filled
        case failed
        case invalidated
        /// The subscription was restored after a gap: anything may have happened.
        case unknown
    }

    private struct State {
        /// Per key: how many events so far, the last one, and the value of the last fill
        /// when it came with its message.
        var keys: [ExactKey: (generation: Int, last: Kind, fill: StoredEntry?, signal: AsyncSignal, users: Int)] = [:]
        var listener: Task<Void, Never>?
        /// Signalled when a subscription being started is confirmed (or has failed).
        var starting: AsyncSignal?
        var isListening = false
        var isClosed = false
    }

    private let state = Mutex(State())
    private let client: RedisClient
    let channel: String
    private let logger: Logger
    private let clock: any MonotonicClock
    let notifications: @Sendable () -> Void
    /// Told of every key a message names and what the message said (a fill, a failure, an
    /// invalidation), on the event loop where the message arrived, after the key's waiters are woken.
    private let changed: @Sendable (Kind, String) -> Void
    /// Told when messages may have been missed (the subscription was interrupted).
    private let mayHaveMissedChanges: @Sendable () -> Void

    init(
        client: RedisClient, channel: String, logger: Logger, clock: any MonotonicClock,
        notifications: @escaping @Sendable () -> Void,
        changed: @escaping @Sendable (Kind, String) -> Void = { _, _ in },
        mayHaveMissedChanges: @escaping @Sendable () -> Void = {}
    ) {
        self.client = client
        self.channel = channel
        self.logger = logger
        self.clock = clock
        self.notifications = notifications
        self.changed = changed
        self.mayHaveMissedChanges = mayHaveMissedChanges
    }

    /// Whether the subscription is up now.
    var isListening: Bool { state.withLock { $0.isListening } }

    /// How many events `key` has seen while watched (see ``watch(_:)``).
    func generation(of key: String) -> Int? {
        state.withLock { $0.keys[ExactKey(key)]?.generation }
    }

    /// Starts listening if not yet; returns whether the subscription is confirmed, waiting at
    /// most `limit` for it (also when another lookup is starting it). Without it, waiters
    /// fall back to re-checking on a timer.
    func ensureListening(within limit: Duration) async -> Bool {
        let (starting, isListening) = state.withLock { state -> (AsyncSignal?, Bool) in
            if state.isListening { return (nil, true) }
            if state.isClosed { return (nil, false) }
            if let starting = state.starting { return (starting, false) }
            let ready = AsyncSignal()
            state.starting = ready
            state.listener = Task { await self.listen(ready: ready) }
            return (ready, false)
        }
        if isListening { return true }
        guard let starting else { return false }
        await starting.wait(after: 0, until: clock.now + limit, clock: clock)
        return state.withLock { $0.isListening }
    }

    /// Messages are handled where they arrive, on the subscription's event loop, not in a
    /// task: a task would compete for the cooperative threads with the callers, and callers
    /// that read the near cache in a loop never suspend, so it could wait as long as their
    /// loop runs while stale entries are served.
    private func listen(ready: AsyncSignal) async {
        do {
            try await client.subscribe(to: [channel], onArrival: { event in self.handle(event) }) { events in
                state.withLock { state in
                    state.isListening = true
                    state.starting = nil
                }
                ready.notify()
                // Handled on arrival; the sequence only ends, with the subscription.
                for try await _ in events {}
            }
        } catch {
            logger.debug("cache subscription ended", metadata: ["stampede.error": "\(error)"])
        }
        // Ended (Redis down at subscribe time, or shut down): the next wait starts a new one;
        // meanwhile waiters re-check on their timers.
        state.withLock { state in
            state.isListening = false
            state.listener = nil
            state.starting = nil
        }
        ready.notify()
        mayHaveMissedChanges()
        notifyAll()
    }

    private func handle(_ event: RedisSubscriptionEvent) {
        switch event {
        case .message(let message):
            switch CacheFormat.Message(payload: message.payload) {
            case .filled(let key, let entry)?: received(.filled, key: key, fill: entry)
            case .failed(let key)?: received(.failed, key: key, fill: nil)
            case .invalidated(let key)?: received(.invalidated, key: key, fill: nil)
            case nil: logger.debug("ignored a message that is not the cache's", metadata: ["stampede.channel": "\(channel)"])
            }
        case .messagesMayHaveBeenMissed:
            logger.debug("cache subscription restored; waking every waiter to re-check")
            mayHaveMissedChanges()
            notifyAll()
        }
    }

    /// What happened to `key`, from a message or from this process's own invalidation.
    ///
    /// The key's generation moves first, then the near entry goes: a lookup that read before
    /// this and keeps its entry after it sees the new generation when it checks again (see
    /// ``StampedeCache`` `keepNear`), so an entry read before the change never stays near.
    func heard(_ kind: Kind, key: String, fill: StoredEntry?) {
        _ = notify(key: key, kind: kind, fill: fill)
        changed(kind, key)
    }

    /// A message about `key`: as ``heard(_:key:fill:)``, counted when someone watched it.
    private func received(_ kind: Kind, key: String, fill: StoredEntry?) {
        if notify(key: key, kind: kind, fill: fill) { notifications() }
        changed(kind, key)
    }

    /// Moves the key's generation and wakes its waiters; `false` when nobody watches it.
    private func notify(key: String, kind: Kind, fill: StoredEntry?) -> Bool {
        let key = ExactKey(key)
        let signal = state.withLock { state -> AsyncSignal? in
            guard var entry = state.keys[key] else { return nil }
            entry.generation += 1
            entry.last = kind
            entry.fill = fill
            state.keys[key] = entry
            return entry.signal
        }
        signal?.notify()
        return signal != nil
    }

    private func notifyAll() {
        let signals = state.withLock { state -> [AsyncSignal] in
            state.keys = state.keys.mapValues { entry in
                var entry = entry
                entry.generation += 1
                entry.last = .unknown
                entry.fill = nil
                return entry
            }
            return state.keys.values.map(\.signal)
        }
        for signal in signals { signal.notify() }
    }

    /// Registers interest in `key`; returns the generation to wait after.
    func watch(_ key: String) -> Int {
        let key = ExactKey(key)
        return state.withLock { state in
            if var entry = state.keys[key] {
                entry.users += 1
                state.keys[key] = entry
                return entry.generation
            }
            state.keys[key] = (0, .unknown, nil, AsyncSignal(), 1)
            return 0
        }
    }

    func unwatch(_ key: String) {
        let key = ExactKey(key)
        state.withLock { state in
            guard var entry = state.keys[key] else { return }
            entry.users -= 1
            state.keys[key] = entry.users > 0 ? entry : nil
        }
    }

    /// Waits for an event on `key` after `generation`, at most until `deadline`. Returns the
    /// event, the new generation and the filled value if it came with the message; `nil`
    /// when the deadline passed first.
    func wait(
        for key: String, after generation: Int, until deadline: ContinuousClock.Instant
    ) async -> (kind: Kind, generation: Int, fill: StoredEntry?)? {
        let key = ExactKey(key)
        guard let signal = state.withLock({ $0.keys[key]?.signal }) else { return nil }
        let current = { self.state.withLock { $0.keys[key].map { (kind: $0.last, generation: $0.generation, fill: $0.fill) } } }
        // Read the signal's generation before checking, so an event in between is not lost.
        let seen = signal.generation
        if let event = current(), event.generation > generation { return event }
        await signal.wait(after: seen, until: deadline, clock: clock)
        if let event = current(), event.generation > generation { return event }
        return nil
    }

    func close() async {
        let listener = state.withLock { state -> Task<Void, Never>? in
            state.isClosed = true
            return state.listener
        }
        listener?.cancel()
        await listener?.value
    }
}
