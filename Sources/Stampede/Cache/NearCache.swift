import Synchronization

/// An in-process, bounded cache in front of Redis: the least recently used entry goes first.
///
/// An entry is served until its local expiry, which the cache sets to at most the time the
/// value stays fresh in Redis; fill and invalidation messages drop entries, and a gap in
/// those messages drops them all. Entries keep the decoded value of the last type asked for,
/// so a hit costs a lock, a dictionary lookup and a cast.
@usableFromInline
final class NearCache: Sendable {
    @usableFromInline
    struct Entry: Sendable {
        /// `nil` for a cached "no such value".
        @usableFromInline var bytes: [UInt8]?
        @usableFromInline var expires: ContinuousClock.Instant
        /// The value decoded for the last type asked for.
        @usableFromInline var decoded: (type: ObjectIdentifier, value: any Sendable)?
    }

    private let entries: Mutex<LeastRecentlyUsed<ExactKey, Entry>>

    init(capacity: Int) {
        entries = Mutex(LeastRecentlyUsed(capacity: capacity))
    }

    /// The entry for `key` if it has not expired (an expired one is dropped).
    @usableFromInline
    func entry(for key: String, now: ContinuousClock.Instant) -> Entry? {
        let key = ExactKey(key)
        return entries.withLock { entries in
            guard let entry = entries.value(for: key) else { return nil }
            if entry.expires <= now {
                entries.removeValue(for: key)
                return nil
            }
            return entry
        }
    }

    func store(_ entry: Entry, for key: String) {
        entries.withLock { $0.setValue(entry, for: ExactKey(key)) }
    }

    /// Remembers the decoded value, if the entry is still the one it was decoded from.
    @usableFromInline
    func attach<Value: Sendable>(_ value: Value, for key: String, expires: ContinuousClock.Instant) {
        let key = ExactKey(key)
        entries.withLock { entries in
            guard var entry = entries.peek(key), entry.expires == expires else { return }
            entry.decoded = (ObjectIdentifier(Value.self), value)
            entries.setValue(entry, for: key)
        }
    }

    func remove(_ key: String) {
        entries.withLock { $0.removeValue(for: ExactKey(key)) }
    }

    func removeAll() {
        entries.withLock { $0.removeAll() }
    }

    var count: Int { entries.withLock { $0.count } }
}
