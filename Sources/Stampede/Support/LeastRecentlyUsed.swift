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
