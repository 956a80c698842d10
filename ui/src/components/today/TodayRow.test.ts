import { render, screen } from '@testing-library/svelte';
import { describe, expect, it } from 'vitest';
import type { Today } from '../../bindings/Today';
import { EMPTY_TODAY } from '../../lib/fixtures';
import TodayRow from './TodayRow.svelte';

function today(patch: Partial<Today>): Today {
  return { ...EMPTY_TODAY, day: '2025-11-24', ...patch };
}

const metric = (
  value: number | null,
  baseline: number | null = null,
  pending = false,
  unscorable = false,
) => ({
  value,
  baseline,
  pending,
  unscorable,
});

describe('today row', () => {
  it.each([
    [80, 'recovery-green'],
    [67, 'recovery-green'],
    [50, 'recovery-yellow'],
    [34, 'recovery-yellow'],
    [20, 'recovery-red'],
  ])('recovery %i%% gets the %s band class', (value, cls) => {
    render(TodayRow, { today: today({ recovery: metric(value) }) });
    const card = screen.getByTestId('today-recovery');
    expect(card).toHaveClass(cls);
    expect(card).toHaveTextContent(new RegExp(`${value}\\s?%`));
  });

  it('shows the difference from the 30-day baseline with its sign', () => {
    render(TodayRow, {
      today: today({ hrv: metric(68, 63.4), resting_hr: metric(51, 54.2) }),
    });
    expect(screen.getByTestId('today-hrv')).toHaveTextContent('68ms');
    expect(screen.getByTestId('today-hrv-diff')).toHaveTextContent('+5 ms vs 30-day avg');
    expect(screen.getByTestId('today-rhr-diff')).toHaveTextContent('\u22123 bpm vs 30-day avg');
  });

  it('pending scores read "Pending", never 0 or blank', () => {
    render(TodayRow, {
      today: today({
        recovery: metric(null, null, true),
        hrv: metric(null, 60, true),
        resting_hr: metric(null, 55, true),
        day_strain: metric(null, null, true),
        sleep: { ...EMPTY_TODAY.sleep, pending: true },
      }),
    });
    for (const id of ['today-recovery', 'today-hrv', 'today-rhr', 'today-sleep', 'today-strain']) {
      const el = screen.getByTestId(id);
      expect(el).toHaveTextContent('Pending');
      expect(el.textContent).not.toMatch(/\b0(\.0)?\b/);
    }
    expect(screen.getByTestId('today-recovery')).toHaveClass('recovery-none');
  });

  it('a pending score with a stale value still reads Pending', () => {
    render(TodayRow, { today: today({ recovery: metric(0, null, true) }) });
    expect(screen.getByTestId('today-recovery')).toHaveTextContent('Pending');
    expect(screen.getByTestId('today-recovery')).not.toHaveTextContent(/0\s?%/);
  });

  it('a night WHOOP could not score reads "Not scored", not "nothing recorded"', () => {
    render(TodayRow, {
      today: today({
        recovery: metric(null, 55, false, true),
        hrv: metric(null, 60, false, true),
        resting_hr: metric(null, 52, false, true),
        day_strain: metric(null, 9, false, true),
        sleep: { ...EMPTY_TODAY.sleep, unscorable: true },
      }),
    });
    for (const id of ['today-recovery', 'today-hrv', 'today-rhr', 'today-sleep', 'today-strain']) {
      const el = screen.getByTestId(id);
      expect(el).toHaveTextContent('Not scored');
      expect(el).toHaveTextContent('WHOOP could not score');
      expect(el).not.toHaveTextContent(/Nothing recorded|No sleep recorded|Pending/);
    }
    // Nothing at all for the day still says so.
    render(TodayRow, { today: today({}) });
    expect(screen.getAllByTestId('today-recovery')[1]).toHaveTextContent(
      'Nothing recorded for this day',
    );
  });

  it('sleep shows performance, hours slept vs needed and stages; strain is out of 21', () => {
    render(TodayRow, {
      today: today({
        sleep: {
          pending: false,
          unscorable: false,
          performance: 91,
          hours_asleep: 7.2,
          hours_needed: 8,
          light_hours: 4,
          deep_hours: 1.5,
          rem_hours: 1.7,
          awake_hours: 0.4,
        },
        day_strain: metric(12.44, 10.1),
      }),
    });
    const sleep = screen.getByTestId('today-sleep');
    expect(sleep).toHaveTextContent(/91\s?%/);
    expect(sleep).toHaveTextContent('7 h 12 min slept of 8 h needed');
    expect(screen.getByRole('img', { name: /Sleep stages: Deep 1 h 30 min/ })).toBeInTheDocument();
    expect(screen.getByTestId('today-strain')).toHaveTextContent(/12[.,]4\/ 21/);
  });
});
