// Luhn and SSN validators.
#include "inspect/validators.hpp"

#include <gtest/gtest.h>

namespace vigil::inspect {
namespace {

TEST(Validators, Luhn) {
    EXPECT_TRUE(luhn_valid("4111111111111111"));
    EXPECT_TRUE(luhn_valid("4111 1111 1111 1111"));
    EXPECT_TRUE(luhn_valid("5555-5555-5555-4444"));
    EXPECT_TRUE(luhn_valid("378282246310005"));  // Amex, 15 digits
    EXPECT_FALSE(luhn_valid("4111111111111112"));
    EXPECT_FALSE(luhn_valid("411111111111"));       // too short
    EXPECT_FALSE(luhn_valid("41111111111111111111"));  // too long
    EXPECT_FALSE(luhn_valid("4111x111111111111"));
}

TEST(Validators, Ssn) {
    EXPECT_TRUE(ssn_valid("123-45-6789"));
    EXPECT_FALSE(ssn_valid("000-45-6789"));
    EXPECT_FALSE(ssn_valid("666-45-6789"));
    EXPECT_FALSE(ssn_valid("912-45-6789"));
    EXPECT_FALSE(ssn_valid("123-00-6789"));
    EXPECT_FALSE(ssn_valid("123-45-0000"));
}

}  // namespace
}  // namespace vigil::inspect
