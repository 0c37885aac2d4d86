// A minimal intrusive doubly linked list: elements carry their own links, so linking and
// unlinking never allocate. An element may sit in one list per Tag at a time.
//
// Usage: struct Conn : ListLink<ReadyTag> {...}; IntrusiveList<Conn, ReadyTag> ready;
//
// Thread safety: none; a list and its elements belong to one thread.
#pragma once

#include "common/check.h"

namespace cinch::net {

template <typename Tag>
class ListLink {
 public:
  ListLink() = default;
  ListLink(const ListLink&) = delete;
  ListLink& operator=(const ListLink&) = delete;

  bool linked() const { return next_ != nullptr; }

 protected:
  ~ListLink() { CINCH_DCHECK(!linked()); }

 private:
  template <typename T, typename Tg>
  friend class IntrusiveList;
  ListLink* prev_ = nullptr;
  ListLink* next_ = nullptr;
};

template <typename T, typename Tag>
class IntrusiveList {
 public:
  IntrusiveList() { head_.prev_ = head_.next_ = &head_; }
  IntrusiveList(const IntrusiveList&) = delete;
  IntrusiveList& operator=(const IntrusiveList&) = delete;
  ~IntrusiveList() { CINCH_DCHECK(empty()); }

  bool empty() const { return head_.next_ == &head_; }

  // REQUIRES: t is in no list of this Tag.
  void PushBack(T* t) {
    Link* l = static_cast<Link*>(t);
    CINCH_DCHECK(!l->linked());
    l->prev_ = head_.prev_;
    l->next_ = &head_;
    head_.prev_->next_ = l;
    head_.prev_ = l;
  }

  // Unlinks t from whichever list of this Tag holds it; no-op if none.
  static void Remove(T* t) {
    Link* l = static_cast<Link*>(t);
    if (!l->linked()) return;
    l->prev_->next_ = l->next_;
    l->next_->prev_ = l->prev_;
    l->prev_ = l->next_ = nullptr;
  }

  // t is in a list of this Tag.
  static bool Linked(const T* t) { return static_cast<const Link*>(t)->linked(); }

  T* Front() const { return empty() ? nullptr : static_cast<T*>(head_.next_); }

  T* PopFront() {
    T* t = Front();
    if (t != nullptr) Remove(t);
    return t;
  }

  // Calls f(T*) for each element. REQUIRES: f unlinks nothing from this list.
  template <typename F>
  void ForEach(F f) {
    for (Link* l = head_.next_; l != &head_; l = l->next_) f(static_cast<T*>(l));
  }

  // Moves every element of `other` to the end of this list.
  void TakeAll(IntrusiveList* other) {
    if (other->empty()) return;
    Link* first = other->head_.next_;
    Link* last = other->head_.prev_;
    other->head_.prev_ = other->head_.next_ = &other->head_;
    first->prev_ = head_.prev_;
    head_.prev_->next_ = first;
    last->next_ = &head_;
    head_.prev_ = last;
  }

 private:
  using Link = ListLink<Tag>;
  // Only the links of the sentinel are used; it is never cast to T.
  struct Head : Link {
    ~Head() { this->prev_ = this->next_ = nullptr; }
  };
  Head head_;
};

}  // namespace cinch::net
