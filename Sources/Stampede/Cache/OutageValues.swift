import Synchronization

/// Values loaded while Redis could not be reached for their key, kept in this process for
/// their time to live, so that an outage costs the origin at most one call per process and
/// key per time to live instead of one per lookup.
///
/// A value is given up as soon as Redis answers for its part of the keyspace: from then on
/// Redis, whose invalidations these values never saw, is the only source for it. On one
/// server that part is everything: the first answer empties the store. On a cluster it is
/// the key's hash slot, so that the masters that keep answering while another fails over do
/// not undo what was kept for the failing one's keys. (A value of a slot that answered is
/// dropped when next looked up, or pushed out by newer ones.)
final class OutageValues: Sendable {
    struct Entry: Sendable {
        /// `nil` for "no such value".
        var bytes: [UInt8]?
        var expires: ContinuousClock.Instant
    }

    /// A load that may keep its value: see ``startLoad(part:)``.
    struct Load: Sendable {
        fileprivate let part: Int
        fileprivate let epoch: Int
    }

    private struct Kept {
        var entry: Entry
        var part: Int
        var epoch: Int
    }

    private struct State {
        var entries: LeastRecentlyUsed<ExactKey, Kept>
        /// Per part of the keyspace, how many times Redis answered for it while anything
        /// was kept or loaded: a value or a load from an earlier epoch is given up.
        var epochs: [Int: Int] = [:]
        var loadsUnderWay = 0
    }

    private let state: Mutex<State>
    private let keepsAny: Bool
    private let onePart: Bool
    /// Whether anything is kept or being loaded: read on every answer from Redis, so
    /// without the lock.
    private let isInUse = Atomic<Bool>(false)

    /// - Parameters:
    ///   - capacity: the most values kept; 0 keeps none.
    ///   - onePart: whether every key is in one part of the keyspace (one server).
    init(capacity: Int, onePart: Bool = true) {
        state = Mutex(State(entries: LeastRecentlyUsed(capacity: max(capacity, 1))))
        keepsAny = capacity > 0
        self.onePart = onePart
    }

    /// The value kept for `key`, unless it expired by `now` or Redis answered for its part
    /// since it was kept.
    func entry(for key: ExactKey, now: ContinuousClock.Instant) -> Entry? {
        state.withLock { state in
            guard let kept = state.entries.value(for: key) else { return nil }
            guard kept.entry.expires > now, kept.epoch == state.epochs[kept.part, default: 0] else {
                state.entries.removeValue(for: key)
                return nil
            }
            return kept.entry
        }
    }

    /// Call before loading without Redis a key in `part` of the keyspace; hand the result
    /// to ``keep(_:for:from:)``, or the load to ``abandon(_:)`` when it failed.
    func startLoad(part: Int = 0) -> Load {
        state.withLock { state in
            isInUse.store(true, ordering: .relaxed)
            state.loadsUnderWay += 1
            return Load(part: part, epoch: state.epochs[part, default: 0])
        }
    }

    /// Keeps the value of `load`, unless Redis answered for its part since the load
    /// started: it may have been invalidated meanwhile, and Redis is the source again.
    func keep(_ entry: Entry, for key: ExactKey, from load: Load) {
        state.withLock { state in
            state.loadsUnderWay -= 1
            guard keepsAny, state.epochs[load.part, default: 0] == load.epoch else { return }
            state.entries.setValue(Kept(entry: entry, part: load.part, epoch: load.epoch), for: key)
        }
    }

    /// A load that failed: nothing to keep.
    func abandon(_ load: Load) {
        state.withLock { $0.loadsUnderWay -= 1 }
    }

    /// Forgets the value kept for `key` (it was invalidated).
    func remove(_ key: ExactKey) {
        guard isInUse.load(ordering: .relaxed) else { return }
        state.withLock { $0.entries.removeValue(for: key) }
    }

    /// Redis answered for `key`, in `part` of the keyspace: give up what was kept, or is
    /// being loaded, for that part.
    func redisAnswered(for key: ExactKey, part: @autoclosure () -> Int = 0) {
        guard isInUse.load(ordering: .relaxed) else { return }
        let part = part()
        state.withLock { state in
            state.epochs[part, default: 0] += 1
            if onePart { state.entries.removeAll() } else { state.entries.removeValue(for: key) }
            if state.entries.count == 0 && state.loadsUnderWay == 0 {
                state.epochs.removeAll()
                isInUse.store(false, ordering: .relaxed)
            }
        }
    }

    var count: Int { state.withLock { $0.entries.count } }
}
