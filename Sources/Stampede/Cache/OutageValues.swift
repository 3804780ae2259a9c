import Synchronization

/// Values loaded while Redis could not be reached, kept in this process for their time to
/// live, so that an outage costs the origin at most one call per process and key per time
/// to live instead of one per lookup. Emptied as soon as Redis answers again: from then on
/// Redis, whose invalidations these values never saw, is the only source.
final class OutageValues: Sendable {
    struct Entry: Sendable {
        /// `nil` for "no such value".
        var bytes: [UInt8]?
        var expires: ContinuousClock.Instant
    }

    /// A load that may keep its value: see ``startLoad()``.
    struct Load: Sendable {
        fileprivate let epoch: Int
    }

    private struct State {
        var entries: LeastRecentlyUsed<ExactKey, Entry>
        /// Moves each time Redis answers while anything is kept or being loaded.
        var epoch = 0
    }

    private let state: Mutex<State>
    private let keepsAny: Bool
    /// Whether anything is kept or being loaded: read on every answer from Redis, so
    /// without the lock.
    private let isInUse = Atomic<Bool>(false)

    /// - Parameter capacity: the most values kept; 0 keeps none.
    init(capacity: Int) {
        state = Mutex(State(entries: LeastRecentlyUsed(capacity: max(capacity, 1))))
        keepsAny = capacity > 0
    }

    /// The value kept for `key`, unless it expired by `now`.
    func entry(for key: ExactKey, now: ContinuousClock.Instant) -> Entry? {
        state.withLock { state in
            guard let entry = state.entries.value(for: key) else { return nil }
            guard entry.expires > now else {
                state.entries.removeValue(for: key)
                return nil
            }
            return entry
        }
    }

    /// Call before loading without Redis; hand the result to ``keep(_:for:from:)``.
    func startLoad() -> Load {
        state.withLock { state in
            isInUse.store(true, ordering: .relaxed)
            return Load(epoch: state.epoch)
        }
    }

    /// Keeps the value of `load`, unless Redis answered since the load started: it may have
    /// been invalidated meanwhile, and Redis is the source again.
    func keep(_ entry: Entry, for key: ExactKey, from load: Load) {
        guard keepsAny else { return }
        state.withLock { state in
            guard state.epoch == load.epoch else { return }
            state.entries.setValue(entry, for: key)
        }
    }

    /// Forgets the value kept for `key` (it was invalidated).
    func remove(_ key: ExactKey) {
        guard isInUse.load(ordering: .relaxed) else { return }
        state.withLock { $0.entries.removeValue(for: key) }
    }

    /// Redis answered: forget everything kept without it, and what loads under way would keep.
    func redisAnswered() {
        guard isInUse.load(ordering: .relaxed) else { return }
        state.withLock { state in
            state.entries.removeAll()
            state.epoch += 1
            isInUse.store(false, ordering: .relaxed)
        }
    }

    var count: Int { state.withLock { $0.entries.count } }
}
