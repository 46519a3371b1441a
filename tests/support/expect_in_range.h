#pragma once

#include <gtest/gtest.h>

// Checks lo <= v <= hi, naming the expression.
#define EXPECT_IN_RANGE(v, lo, hi)  \
  do {                              \
    const auto v_ = (v);            \
    EXPECT_GE(v_, (lo)) << #v;      \
    EXPECT_LE(v_, (hi)) << #v;      \
  } while (0)
