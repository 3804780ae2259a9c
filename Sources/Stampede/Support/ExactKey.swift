/// A key compared and hashed by its UTF-8 bytes, as Redis compares keys.
///
/// Swift's `String` equality is canonical equivalence: `"\u{e9}"` and `"e\u{301}"` are equal
/// strings but different Redis keys. The in-process maps that stand for Redis keys (the
/// single flight, the near cache, the waiters for fills, the local lock gates) key on this,
/// so that two keys share an entry only when Redis would.
@usableFromInline
struct ExactKey: Hashable, Sendable, CustomStringConvertible {
    @usableFromInline let string: String

    @inlinable init(_ string: String) { self.string = string }

    @inlinable
    static func == (lhs: ExactKey, rhs: ExactKey) -> Bool {
        let (left, right) = (lhs.string.utf8, rhs.string.utf8)
        guard left.count == right.count else { return false }
        let equal = left.withContiguousStorageIfAvailable { left in
            right.withContiguousStorageIfAvailable { right in left.elementsEqual(right) }
        }
        return (equal ?? nil) ?? left.elementsEqual(right)
    }

    @inlinable
    func hash(into hasher: inout Hasher) {
        // The same bytes in one piece either way, so that equal keys hash alike.
        let hashed: Void? = string.utf8.withContiguousStorageIfAvailable { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        if hashed == nil { Array(string.utf8).withUnsafeBytes { hasher.combine(bytes: $0) } }
    }

    @usableFromInline var description: String { string }
}
