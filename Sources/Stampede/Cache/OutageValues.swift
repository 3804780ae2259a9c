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

    private let entries: Mutex<LeastRecentlyUsed<ExactKey, Entry>>
    private let keepsAny: Bool
    /// Whether any entry is kept: read on every answer from Redis, so without a lock.
    private let isHoldingAny = Atomic<Bool>(false)

    /// - Parameter capacity: the most values kept; 0 keeps none.
    init(capacity: Int) {
        entries = Mutex(LeastRecentlyUsed(capacity: max(capacity, 1)))
        keepsAny = capacity > 0
    }

    /// The value kept for `key`, unless it expired by `now`.
    func entry(for key: ExactKey, now: ContinuousClock.Instant) -> Entry? {
        entries.withLock { entries in
            guard let entry = entries.value(for: key) else { return nil }
            guard entry.expires > now else {
                entries.removeValue(for: key)
                return nil
            }
            return entry
        }
    }

    func keep(_ entry: Entry, for key: ExactKey) {
        guard keepsAny else { return }
        entries.withLock { entries in
            entries.setValue(entry, for: key)
            isHoldingAny.store(true, ordering: .relaxed)
        }
    }

    /// Redis answered: forget everything kept without it.
    func redisAnswered() {
        guard isHoldingAny.load(ordering: .relaxed) else { return }
        entries.withLock { entries in
            entries.removeAll()
            isHoldingAny.store(false, ordering: .relaxed)
        }
    }

    var count: Int { entries.withLock { $0.count } }
}
