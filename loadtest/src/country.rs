//! The simulated country: who pays whom, how much.

use ponte_domain::ParticipantId;
use rand::Rng;

/// One simulated participant.
#[derive(Debug, Clone)]
pub struct Bank {
    pub code: ParticipantId,
    /// Share of the country's payments it sends and receives (sums to 1).
    pub weight: f64,
}

/// Participants with Zipf-like volume: bank `i` (from 1) has weight
/// proportional to `1 / i`, so with 20 participants the biggest bank carries
/// about 28% of the traffic and the smallest wallet under 2%.
pub fn zipf(codes: &[ParticipantId]) -> Vec<Bank> {
    let raw: Vec<f64> = (1..=codes.len()).map(|i| 1.0 / i as f64).collect();
    let total: f64 = raw.iter().sum();
    codes.iter().zip(raw).map(|(&code, w)| Bank { code, weight: w / total }).collect()
}

/// The codes of an own-switch country: 10000001, 10000002, ...
pub fn codes(count: usize) -> Vec<ParticipantId> {
    (1..=count as u32).map(|i| ParticipantId::new(10_000_000 + i).expect("8 digits")).collect()
}

/// Picks a payee for `payer`, weighted by volume, never the payer itself.
pub fn pick_payee(rng: &mut impl Rng, banks: &[Bank], payer: usize) -> usize {
    let total: f64 = banks.iter().enumerate().filter(|(i, _)| *i != payer).map(|(_, b)| b.weight).sum();
    let mut roll = rng.random::<f64>() * total;
    for (i, bank) in banks.iter().enumerate() {
        if i == payer {
            continue;
        }
        if roll < bank.weight {
            return i;
        }
        roll -= bank.weight;
    }
    (payer + 1) % banks.len()
}

/// The phone key of simulated customer `n`: a Brazilian mobile number
/// (E.164), distinct for every `n` below 900 million (nine area codes, each
/// with its 100 million `9xxxxxxxx` numbers).
pub fn phone_key(n: u64) -> String {
    const AREAS: [u32; 9] = [61, 11, 21, 31, 41, 51, 71, 81, 91];
    format!("+55{}9{:08}", AREAS[(n / 100_000_000 % 9) as usize], n % 100_000_000)
}

/// Which bank holds customer `n`'s key: spread by volume, like payees.
pub fn holder_of(banks: &[Bank], n: u64) -> usize {
    // A fixed multiplicative hash of n, as a fraction in [0, 1).
    let roll = (n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1_u64 << 53) as f64;
    let mut cumulative = 0.0;
    for (i, bank) in banks.iter().enumerate() {
        cumulative += bank.weight;
        if roll < cumulative {
            return i;
        }
    }
    banks.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_are_skewed_and_sum_to_one() {
        let banks = zipf(&codes(20));
        let total: f64 = banks.iter().map(|b| b.weight).sum();
        assert!((total - 1.0).abs() < 1e-9);
        assert!(banks[0].weight > 0.25 && banks[19].weight < 0.02);
        let mut rng = rand::rng();
        let mut hits = vec![0_u32; 20];
        for _ in 0..20_000 {
            let payee = pick_payee(&mut rng, &banks, 3);
            assert_ne!(payee, 3);
            hits[payee] += 1;
        }
        assert!(hits[0] > hits[10] * 5, "{hits:?}");
    }
}
