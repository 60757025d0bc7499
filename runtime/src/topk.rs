//! Bounded top-k selection in a caller-given buffer (no allocation).

/// One recommended item.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Recommendation {
    /// The item's external id.
    pub id: u64,
    /// The item's row number in the item table.
    pub index: usize,
    /// Its score: similarity plus biases.
    pub score: f32,
}

/// True when `a` ranks below `b`: lower score, or equal score and higher row number.
#[inline(always)]
fn worse(a: &Recommendation, b: &Recommendation) -> bool {
    a.score < b.score || (a.score == b.score && a.index > b.index)
}

/// Keeps the `k` best candidates seen so far in a min-heap (the worst kept one at the root)
/// laid out in the caller's buffer.
pub(crate) struct TopK<'o> {
    heap: &'o mut [Recommendation],
    len: usize,
}

impl<'o> TopK<'o> {
    /// Selection of `heap.len()` items.
    pub fn new(heap: &'o mut [Recommendation]) -> Self {
        TopK { heap, len: 0 }
    }

    /// Whether a candidate with this score and row would enter the selection.
    #[inline(always)]
    pub fn accepts(&self, score: f32, index: usize) -> bool {
        if self.len < self.heap.len() {
            return true;
        }
        match self.heap.first() {
            Some(root) => worse(
                root,
                &Recommendation {
                    id: 0,
                    index,
                    score,
                },
            ),
            None => false,
        }
    }

    /// When the selection is full, the score a candidate later in the scan must beat (ties go
    /// to the earlier row, so equalling it is not enough); `None` while it is not full.
    #[inline(always)]
    pub fn threshold(&self) -> Option<f32> {
        if self.len < self.heap.len() {
            None
        } else {
            self.heap.first().map(|r| r.score)
        }
    }

    /// Adds a candidate that [`Self::accepts`] approved.
    pub fn push(&mut self, candidate: Recommendation) {
        if self.len < self.heap.len() {
            self.heap[self.len] = candidate;
            self.sift_up(self.len);
            self.len += 1;
        } else if let Some(root) = self.heap.first_mut() {
            *root = candidate;
            self.sift_down(0);
        }
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if worse(&self.heap[i], &self.heap[parent]) {
                self.heap.swap(i, parent);
                i = parent;
            } else {
                break;
            }
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.len;
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut smallest = i;
            if l < n && worse(&self.heap[l], &self.heap[smallest]) {
                smallest = l;
            }
            if r < n && worse(&self.heap[r], &self.heap[smallest]) {
                smallest = r;
            }
            if smallest == i {
                break;
            }
            self.heap.swap(i, smallest);
            i = smallest;
        }
    }

    /// Sorts the selection best first and returns how many items it holds.
    pub fn finish(self) -> usize {
        let len = self.len;
        self.heap[..len].sort_unstable_by(|a, b| {
            if worse(b, a) {
                core::cmp::Ordering::Less
            } else if worse(a, b) {
                core::cmp::Ordering::Greater
            } else {
                core::cmp::Ordering::Equal
            }
        });
        len
    }
}
