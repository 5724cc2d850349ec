//! The tray icon's picture: the brand's icon (the app's default window icon, so a brand's
//! `icons/` folder is the base) with overlays that show the state at a glance, drawn when the
//! state changes:
//!
//! - registration, a dot at the bottom right: green registered, amber registering, red failed,
//!   grey not registered (not started, `Ready` without an account, unregistered);
//! - do-not-disturb: the icon greyed out and dimmed, with a red no-entry sign at the top left;
//! - missed calls: an orange badge at the top right with the count (1 to 9, `+` above).
//!
//! Pure functions of a [`TrayLook`] and the base picture (straight-alpha RGBA), so the unit tests
//! check the pixels. Each look has a stable [`TrayLook::id`] that the app reports to the
//! automation hook and the log.

/// Side of the square picture handed to the tray (the tray host scales it to its panel).
pub const TRAY_SIZE: u32 = 64;

/// What the registration dot shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegBadge {
    /// Not started, started without registering, or unregistered.
    Offline,
    /// A REGISTER is under way.
    Pending,
    /// Registered (RFC 3261 §10: the registrar accepted the binding).
    Registered,
    /// The last REGISTER failed.
    Failed,
}

impl RegBadge {
    /// From the registration label the tray shows (the engine's general `STATUS,-1,...` texts,
    /// `Not started` before the first one).
    pub fn from_label(label: &str) -> RegBadge {
        let l = label.to_ascii_lowercase();
        if l.contains("fail") || l.contains("error") {
            RegBadge::Failed
        } else if l == "registered" {
            RegBadge::Registered
        } else if l.starts_with("registering") || l.starts_with("initializing") {
            RegBadge::Pending
        } else {
            RegBadge::Offline
        }
    }

    fn name(self) -> &'static str {
        match self {
            RegBadge::Offline => "offline",
            RegBadge::Pending => "registering",
            RegBadge::Registered => "registered",
            RegBadge::Failed => "failed",
        }
    }

    /// The dot's colour.
    pub fn colour(self) -> [u8; 3] {
        match self {
            RegBadge::Offline => [140, 140, 140],
            RegBadge::Pending => [240, 170, 0],
            RegBadge::Registered => [40, 170, 70],
            RegBadge::Failed => [215, 40, 40],
        }
    }
}

/// Colour of the no-entry sign (do-not-disturb).
pub const DND_RED: [u8; 3] = [200, 25, 25];
/// Colour of the missed-call badge.
pub const MISSED_ORANGE: [u8; 3] = [245, 110, 0];
const WHITE: [u8; 3] = [255, 255, 255];

/// Everything the tray picture shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrayLook {
    pub reg: RegBadge,
    pub dnd: bool,
    pub missed: u32,
}

/// Centres and radii of the overlays as fractions of the side (also read by
/// tests/e2e-desktop/calls.mjs, which samples the picture the tray host gets).
pub const REG_DOT: (f32, f32, f32) = (0.77, 0.77, 0.21);
pub const DND_SIGN: (f32, f32, f32) = (0.25, 0.25, 0.24);
pub const MISSED_BADGE: (f32, f32, f32) = (0.75, 0.25, 0.24);

impl TrayLook {
    /// A stable name of the look: `registered`, `failed+dnd`, `registered+dnd+missed2`,
    /// `offline+missed9+` (the badge shows `+` above nine).
    pub fn id(&self) -> String {
        let mut id = self.reg.name().to_string();
        if self.dnd {
            id.push_str("+dnd");
        }
        match self.missed {
            0 => {}
            n @ 1..=9 => id.push_str(&format!("+missed{n}")),
            _ => id.push_str("+missed9+"),
        }
        id
    }

    /// Draws the look over `base` (`width` x `height` straight-alpha RGBA): a
    /// [`TRAY_SIZE`]-square RGBA picture. `None` when `base` is not a whole picture.
    pub fn render(&self, base: &[u8], width: u32, height: u32) -> Option<Vec<u8>> {
        let mut img = Canvas::scaled(base, width, height, TRAY_SIZE)?;
        if self.dnd {
            img.grey_out();
            let (x, y, r) = img.circle(DND_SIGN);
            img.disc(x, y, r + img.ring(), WHITE);
            img.disc(x, y, r, DND_RED);
            let (hw, hh) = (r * 0.62, (r * 0.2).max(1.5));
            img.rect(x - hw, y - hh, x + hw, y + hh, WHITE);
        }
        if self.missed > 0 {
            let (x, y, r) = img.circle(MISSED_BADGE);
            img.disc(x, y, r + img.ring(), WHITE);
            img.disc(x, y, r, MISSED_ORANGE);
            let glyph = if self.missed > 9 {
                GLYPH_PLUS
            } else {
                DIGITS[self.missed as usize]
            };
            img.glyph(x, y, r, glyph, WHITE);
        }
        let (x, y, r) = img.circle(REG_DOT);
        img.disc(x, y, r + img.ring(), WHITE);
        img.disc(x, y, r, self.reg.colour());
        Some(img.px)
    }
}

/// 3x5 bitmap digits 0-9 (rows top to bottom, the top three bits of each row left to right).
const DIGITS: [[u8; 5]; 10] = [
    [0b111, 0b101, 0b101, 0b101, 0b111],
    [0b010, 0b110, 0b010, 0b010, 0b111],
    [0b111, 0b001, 0b111, 0b100, 0b111],
    [0b111, 0b001, 0b111, 0b001, 0b111],
    [0b101, 0b101, 0b111, 0b001, 0b001],
    [0b111, 0b100, 0b111, 0b001, 0b111],
    [0b111, 0b100, 0b111, 0b101, 0b111],
    [0b111, 0b001, 0b001, 0b010, 0b010],
    [0b111, 0b101, 0b111, 0b101, 0b111],
    [0b111, 0b101, 0b111, 0b001, 0b111],
];
const GLYPH_PLUS: [u8; 5] = [0b000, 0b010, 0b111, 0b010, 0b000];

/// A square straight-alpha RGBA picture being drawn on.
struct Canvas {
    side: u32,
    px: Vec<u8>,
}

impl Canvas {
    /// `base` resampled to `side` x `side`: area average (premultiplied) when shrinking, nearest
    /// pixel when growing; a non-square base is centred.
    fn scaled(base: &[u8], width: u32, height: u32, side: u32) -> Option<Canvas> {
        let (w, h) = (width as usize, height as usize);
        if w == 0 || h == 0 || base.len() != w * h * 4 {
            return None;
        }
        let s = side as usize;
        let scale = w.max(h) as f32 / s as f32;
        let (ox, oy) = ((w.max(h) - w) as f32 / 2.0, (w.max(h) - h) as f32 / 2.0);
        let mut px = vec![0u8; s * s * 4];
        for y in 0..s {
            for x in 0..s {
                let (x0, x1) = (x as f32 * scale - ox, (x + 1) as f32 * scale - ox);
                let (y0, y1) = (y as f32 * scale - oy, (y + 1) as f32 * scale - oy);
                let sx0 = x0.floor().max(0.0) as usize;
                let sy0 = y0.floor().max(0.0) as usize;
                let sx1 = (x1.ceil().max(x0.floor() + 1.0) as usize).min(w);
                let sy1 = (y1.ceil().max(y0.floor() + 1.0) as usize).min(h);
                let mut acc = [0f32; 4];
                let mut n = 0f32;
                for sy in sy0..sy1 {
                    for sx in sx0..sx1 {
                        let i = (sy * w + sx) * 4;
                        let a = base[i + 3] as f32 / 255.0;
                        for (c, v) in acc.iter_mut().take(3).enumerate() {
                            *v += base[i + c] as f32 * a;
                        }
                        acc[3] += a;
                        n += 1.0;
                    }
                }
                let o = (y * s + x) * 4;
                if n > 0.0 && acc[3] > 0.0 {
                    for c in 0..3 {
                        px[o + c] = (acc[c] / acc[3]).round().clamp(0.0, 255.0) as u8;
                    }
                    px[o + 3] = (acc[3] / n * 255.0).round().clamp(0.0, 255.0) as u8;
                }
            }
        }
        Some(Canvas { side, px })
    }

    /// Centre and radius in pixels of an overlay given in fractions of the side.
    fn circle(&self, (cx, cy, r): (f32, f32, f32)) -> (f32, f32, f32) {
        let s = self.side as f32;
        (cx * s, cy * s, r * s)
    }

    /// Width of the white ring that keeps an overlay readable on any icon and panel colour.
    fn ring(&self) -> f32 {
        (self.side as f32 / 32.0).max(1.0)
    }

    /// Paints `rgb` with coverage `cover` (0..1) over the pixel (`over` compositing).
    fn blend(&mut self, x: usize, y: usize, rgb: [u8; 3], cover: f32) {
        if cover <= 0.0 || x >= self.side as usize || y >= self.side as usize {
            return;
        }
        let i = (y * self.side as usize + x) * 4;
        let cover = cover.min(1.0);
        let da = self.px[i + 3] as f32 / 255.0;
        let oa = cover + da * (1.0 - cover);
        for (c, &v) in rgb.iter().enumerate() {
            let d = self.px[i + c] as f32;
            let out = (v as f32 * cover + d * da * (1.0 - cover)) / oa;
            self.px[i + c] = out.round().clamp(0.0, 255.0) as u8;
        }
        self.px[i + 3] = (oa * 255.0).round().clamp(0.0, 255.0) as u8;
    }

    /// A filled circle, edges anti-aliased over one pixel.
    fn disc(&mut self, cx: f32, cy: f32, r: f32, rgb: [u8; 3]) {
        let s = self.side as usize;
        for y in 0..s {
            for x in 0..s {
                let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
                let d = (dx * dx + dy * dy).sqrt();
                self.blend(x, y, rgb, r - d + 0.5);
            }
        }
    }

    /// A filled rectangle (pixel centres inside).
    fn rect(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, rgb: [u8; 3]) {
        let s = self.side as usize;
        for y in 0..s {
            for x in 0..s {
                let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
                if px >= x0 && px <= x1 && py >= y0 && py <= y1 {
                    self.blend(x, y, rgb, 1.0);
                }
            }
        }
    }

    /// A 3x5 glyph centred on (`cx`, `cy`), as tall as fits in a circle of radius `r`.
    fn glyph(&mut self, cx: f32, cy: f32, r: f32, rows: [u8; 5], rgb: [u8; 3]) {
        let k = ((r * 1.3) / 5.0).floor().max(1.0);
        let (x0, y0) = ((cx - 1.5 * k).round(), (cy - 2.5 * k).round());
        for (row, bits) in rows.iter().enumerate() {
            for col in 0..3 {
                if bits & (0b100 >> col) != 0 {
                    let (gx, gy) = (x0 + col as f32 * k, y0 + row as f32 * k);
                    self.rect(gx, gy, gx + k, gy + k, rgb);
                }
            }
        }
    }

    /// Do-not-disturb: most of the colour taken out and the picture dimmed.
    fn grey_out(&mut self) {
        for p in self.px.chunks_exact_mut(4) {
            let l = 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32;
            for v in p.iter_mut().take(3) {
                *v = (*v as f32 * 0.25 + l * 0.75).round() as u8;
            }
            p[3] = (p[3] as f32 * 0.55).round() as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: usize = TRAY_SIZE as usize;

    /// A 32x32 opaque blue square (the size of the smallest brand icon).
    fn base() -> Vec<u8> {
        [30u8, 60, 200, 255].repeat(32 * 32)
    }

    fn at(px: &[u8], (fx, fy): (f32, f32)) -> [u8; 4] {
        let (x, y) = ((fx * S as f32) as usize, (fy * S as f32) as usize);
        let i = (y * S + x) * 4;
        [px[i], px[i + 1], px[i + 2], px[i + 3]]
    }

    fn rgb(c: [u8; 3]) -> [u8; 4] {
        [c[0], c[1], c[2], 255]
    }

    #[test]
    fn registration_labels_map_to_badges() {
        for (label, badge) in [
            ("Registered", RegBadge::Registered),
            ("Registering...", RegBadge::Pending),
            ("Initializing", RegBadge::Pending),
            ("Register Failed", RegBadge::Failed),
            ("Not started", RegBadge::Offline),
            ("Ready", RegBadge::Offline),
            ("Unregistered", RegBadge::Offline),
        ] {
            assert_eq!(RegBadge::from_label(label), badge, "{label}");
        }
    }

    #[test]
    fn ids_name_every_overlay() {
        let look = |reg, dnd, missed| TrayLook { reg, dnd, missed }.id();
        assert_eq!(look(RegBadge::Registered, false, 0), "registered");
        assert_eq!(look(RegBadge::Failed, true, 0), "failed+dnd");
        assert_eq!(
            look(RegBadge::Registered, true, 2),
            "registered+dnd+missed2"
        );
        assert_eq!(look(RegBadge::Offline, false, 12), "offline+missed9+");
    }

    #[test]
    fn registered_icon_keeps_the_brand_and_adds_a_green_dot() {
        let look = TrayLook {
            reg: RegBadge::Registered,
            dnd: false,
            missed: 0,
        };
        let px = look.render(&base(), 32, 32).unwrap();
        assert_eq!(px.len(), S * S * 4);
        assert_eq!(
            at(&px, (REG_DOT.0, REG_DOT.1)),
            rgb(RegBadge::Registered.colour())
        );
        // The rest is the brand's icon, untouched.
        assert_eq!(at(&px, (0.25, 0.25)), [30, 60, 200, 255]);
        assert_eq!(at(&px, (0.75, 0.1)), [30, 60, 200, 255]);
    }

    #[test]
    fn each_registration_state_has_its_own_dot_colour() {
        let mut seen = Vec::new();
        for reg in [
            RegBadge::Offline,
            RegBadge::Pending,
            RegBadge::Registered,
            RegBadge::Failed,
        ] {
            let look = TrayLook {
                reg,
                dnd: false,
                missed: 0,
            };
            let px = look.render(&base(), 32, 32).unwrap();
            let c = at(&px, (REG_DOT.0, REG_DOT.1));
            assert_eq!(c, rgb(reg.colour()));
            assert!(!seen.contains(&c), "{reg:?} shares a colour");
            seen.push(c);
        }
    }

    #[test]
    fn dnd_greys_out_the_icon_and_shows_a_no_entry_sign() {
        let look = TrayLook {
            reg: RegBadge::Registered,
            dnd: true,
            missed: 0,
        };
        let px = look.render(&base(), 32, 32).unwrap();
        // Sign: red disc with a white bar across its centre.
        assert_eq!(at(&px, (DND_SIGN.0, DND_SIGN.1 - 0.15)), rgb(DND_RED));
        assert_eq!(at(&px, (DND_SIGN.0, DND_SIGN.1)), rgb(WHITE));
        // Elsewhere: no longer the saturated blue, half transparent.
        let p = at(&px, (0.5, 0.9));
        assert!(p[3] < 200, "{p:?}");
        assert!((p[2] as i32 - p[0] as i32) < 80, "{p:?} still blue");
        assert_eq!(
            at(&px, (REG_DOT.0, REG_DOT.1)),
            rgb(RegBadge::Registered.colour())
        );
    }

    #[test]
    fn missed_calls_badge_shows_the_count() {
        let render = |missed| {
            TrayLook {
                reg: RegBadge::Registered,
                dnd: false,
                missed,
            }
            .render(&base(), 32, 32)
            .unwrap()
        };
        let one = render(1);
        assert_eq!(
            at(&one, (MISSED_BADGE.0, MISSED_BADGE.1 - 0.19)),
            rgb(MISSED_ORANGE)
        );
        let white = |px: &[u8]| {
            px.chunks_exact(4)
                .filter(|p| p == &[255, 255, 255, 255])
                .count()
        };
        // The digit's white pixels differ between counts; "8" has more than "1".
        assert!(white(&render(8)) > white(&one));
        assert_ne!(render(3), render(4));
        assert_eq!(render(10), render(25), "above nine the badge shows +");
        assert_eq!(at(&render(0), (MISSED_BADGE.0, 0.06)), [30, 60, 200, 255]);
    }

    #[test]
    fn large_and_odd_shaped_bases_are_scaled() {
        let big = [200u8, 10, 10, 255].repeat(512 * 512);
        let look = TrayLook {
            reg: RegBadge::Failed,
            dnd: false,
            missed: 0,
        };
        let px = look.render(&big, 512, 512).unwrap();
        assert_eq!(at(&px, (0.2, 0.2)), [200, 10, 10, 255]);
        let wide = [0u8, 0, 0, 255].repeat(64 * 32);
        let px = look.render(&wide, 64, 32).unwrap();
        assert_eq!(at(&px, (0.5, 0.05))[3], 0, "letterbox stays transparent");
        assert_eq!(at(&px, (0.3, 0.5)), [0, 0, 0, 255]);
        assert!(look.render(&[0; 7], 2, 2).is_none());
        assert!(look.render(&[], 0, 0).is_none());
    }
}
