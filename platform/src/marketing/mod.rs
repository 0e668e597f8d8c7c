//! Marketing (SPEC K1, K3): the lottery wheel and the check-in calendar.

pub mod checkin;
pub mod favorites;
pub mod lottery;
