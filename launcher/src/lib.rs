//! `watercooler`, the launcher that starts and steers a CrapCoin sandbox.
//! Filled by the watercooler issue.
