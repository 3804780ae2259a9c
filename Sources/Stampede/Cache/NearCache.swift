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

/// A dictionary with a size limit that evicts the least recently used key.
///
/// Entries live in arrays linked into a list, most recent first, so that lookups, moves and
/// evictions cost O(1) without an allocation per entry.
struct LeastRecentlyUsed<Key: Hashable, Value> {
    let capacity: Int
    private var slots: [Key: Int] = [:]
    private var keys: [Key?] = []
    private var values: [Value?] = []
    private var newer: [Int] = []
    private var older: [Int] = []
    private var newest = -1
    private var oldest = -1
    private var freeSlots: [Int] = []

    init(capacity: Int) {
        precondition(capacity > 0, "a cache holds at least one entry")
        self.capacity = capacity
    }

    var count: Int { slots.count }

    /// The value for `key`, which becomes the most recently used.
    mutating func value(for key: Key) -> Value? {
        guard let slot = slots[key] else { return nil }
        moveToFront(slot)
        return values[slot]
    }

    /// The value for `key`, leaving the order as it is.
    func peek(_ key: Key) -> Value? {
        slots[key].flatMap { values[$0] }
    }

    mutating func setValue(_ value: Value, for key: Key) {
        if let slot = slots[key] {
            values[slot] = value
            moveToFront(slot)
            return
        }
        if slots.count >= capacity, oldest >= 0, let evicted = keys[oldest] { removeValue(for: evicted) }
        let slot: Int
        if let free = freeSlots.popLast() {
            slot = free
            keys[slot] = key
            values[slot] = value
        } else {
            slot = keys.count
            keys.append(key)
            values.append(value)
            newer.append(-1)
            older.append(-1)
        }
        slots[key] = slot
        link(slot)
    }

    mutating func removeValue(for key: Key) {
        guard let slot = slots.removeValue(forKey: key) else { return }
        unlink(slot)
        values[slot] = nil
        keys[slot] = nil
        freeSlots.append(slot)
    }

    mutating func removeAll() {
        self = LeastRecentlyUsed(capacity: capacity)
    }

    private mutating func moveToFront(_ slot: Int) {
        guard slot != newest else { return }
        unlink(slot)
        link(slot)
    }

    /// Puts `slot` at the front (most recent).
    private mutating func link(_ slot: Int) {
        newer[slot] = -1
        older[slot] = newest
        if newest >= 0 { newer[newest] = slot }
        newest = slot
        if oldest < 0 { oldest = slot }
    }

    private mutating func unlink(_ slot: Int) {
        let (before, after) = (newer[slot], older[slot])
        if before >= 0 { older[before] = after } else { newest = after }
        if after >= 0 { newer[after] = before } else { oldest = before }
        newer[slot] = -1
        older[slot] = -1
    }
}
