#version 330
// Pass 1 of a splat frame: one fragment per stored Gaussian (texel j holds Gaussian j), drawn over a
// (u_tex_width x rows) target, so that the per-Gaussian work (3DGS's EWA projection, the SH colour,
// the overlay and the object views) runs in the fragment stage, which llvmpipe spreads over its
// threads and SIMD lanes (its vertex stage runs on one thread). Sigma_2d = J W Sigma W^T J^T + 0.3 I
// as engine/splats/project.py, the same clamps and cutoffs. Pass 2 (splat.vert.glsl) reads the results.
uniform sampler2D u_center;      // per Gaussian: xyz, opacity
uniform sampler2D u_cov_a;       // Sigma xx, xy, xz
uniform sampler2D u_cov_b;       // Sigma yy, yz, zz
uniform sampler2D u_sh;          // SH coefficients, u_sh_texels texels per Gaussian (3 floats per coefficient)
uniform usampler2D u_ids;        // object id per Gaussian (0 none, k object k)
uniform int u_tex_width;
uniform int u_count;             // Gaussians to project (the first u_count texels)
uniform int u_sh_coeffs;         // 1, 4, 9 or 16
uniform int u_sh_texels;
uniform mat3 u_W;                // world -> camera rotation
uniform vec3 u_origin;           // camera centre
uniform vec4 u_K;                // fx, fy, cx, cy
uniform vec2 u_size;             // W, H in pixels
uniform bool u_overlay;
uniform float u_tint;
uniform int u_view_mode;         // 0 scene, 1 object u_selected alone, 2 scene without it
uniform int u_selected;
uniform vec4 u_objects[32];      // per object id (1-based): rgb colour, a = visible
uniform float u_area_scale;      // covariance factor of a thinned draw

layout(location = 0) out vec4 out_screen;   // centre x, y in pixels; half extents x, y (negative: not drawn)
layout(location = 1) out vec4 out_conic;    // inverse 2D covariance a, b, c
layout(location = 2) out vec4 out_color;    // rgb, opacity

const float SH_C0 = 0.28209479177387814;
const float SH_C1 = 0.4886025119029199;
const float SH_C2[5] = float[](1.0925484305920792, -1.0925484305920792, 0.31539156525252005,
                               -1.0925484305920792, 0.5462742152960396);
const float SH_C3[7] = float[](-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
                               -0.4570457994644658, 1.445305721320277, -0.5900435899266435);

vec4 sh_texels[12];

vec3 coeff(int k) {
    int f = 3 * k;
    return vec3(sh_texels[f / 4][f % 4], sh_texels[(f + 1) / 4][(f + 1) % 4], sh_texels[(f + 2) / 4][(f + 2) % 4]);
}

vec3 sh_color(int i, vec3 dir) {
    for (int t = 0; t < u_sh_texels; ++t) {
        int flat_index = i * u_sh_texels + t;
        sh_texels[t] = texelFetch(u_sh, ivec2(flat_index % u_tex_width, flat_index / u_tex_width), 0);
    }
    vec3 rgb = SH_C0 * coeff(0);
    if (u_sh_coeffs > 1) {
        float x = dir.x, y = dir.y, z = dir.z;
        rgb += -SH_C1 * y * coeff(1) + SH_C1 * z * coeff(2) - SH_C1 * x * coeff(3);
        if (u_sh_coeffs > 4) {
            float xx = x * x, yy = y * y, zz = z * z;
            rgb += SH_C2[0] * x * y * coeff(4) + SH_C2[1] * y * z * coeff(5)
                 + SH_C2[2] * (2.0 * zz - xx - yy) * coeff(6) + SH_C2[3] * x * z * coeff(7)
                 + SH_C2[4] * (xx - yy) * coeff(8);
            if (u_sh_coeffs > 9) {
                rgb += SH_C3[0] * y * (3.0 * xx - yy) * coeff(9) + SH_C3[1] * x * y * z * coeff(10)
                     + SH_C3[2] * y * (4.0 * zz - xx - yy) * coeff(11)
                     + SH_C3[3] * z * (2.0 * zz - 3.0 * xx - 3.0 * yy) * coeff(12)
                     + SH_C3[4] * x * (4.0 * zz - xx - yy) * coeff(13) + SH_C3[5] * z * (xx - yy) * coeff(14)
                     + SH_C3[6] * x * (xx - 3.0 * yy) * coeff(15);
            }
        }
    }
    return max(rgb + 0.5, 0.0);
}

void main() {
    ivec2 at = ivec2(gl_FragCoord.xy);
    int i = at.y * u_tex_width + at.x;
    out_screen = vec4(0.0, 0.0, -1.0, -1.0);
    out_conic = vec4(0.0);
    out_color = vec4(0.0);
    if (i >= u_count) return;
    vec4 center = texelFetch(u_center, at, 0);
    vec3 t = u_W * (center.xyz - u_origin);
    int id = int(texelFetch(u_ids, at, 0).r);
    bool hidden = (u_view_mode == 1 && id != u_selected) || (u_view_mode == 2 && id == u_selected);
    float reach = 2.0 * log(255.0 * center.w);          // alpha >= 1/255 inside d^T conic d <= reach
    if (t.z <= 0.2 || hidden || reach <= 0.0) return;
    vec3 a = texelFetch(u_cov_a, at, 0).xyz;
    vec3 b = texelFetch(u_cov_b, at, 0).xyz;
    mat3 Sigma = u_area_scale * mat3(a.x, a.y, a.z, a.y, b.x, b.y, a.z, b.y, b.z);
    float fx = u_K.x, fy = u_K.y, cx = u_K.z, cy = u_K.w;
    vec2 uv = t.xy / t.z;
    vec2 spread = 0.15 * u_size / u_K.xy;               // 1.3x the image's extent, as project.py
    vec2 uv_c = clamp(uv, -vec2(cx, cy) / u_K.xy - spread, (u_size - vec2(cx, cy)) / u_K.xy + spread);
    mat3 J = mat3(fx / t.z, 0.0, 0.0, 0.0, fy / t.z, 0.0, -fx * uv_c.x / t.z, -fy * uv_c.y / t.z, 0.0);
    mat3 JW = J * u_W;
    mat3 cov = JW * Sigma * transpose(JW);
    float sxx = cov[0][0] + 0.3, sxy = cov[0][1], syy = cov[1][1] + 0.3;
    float det = sxx * syy - sxy * sxy;
    vec2 pixel = vec2(fx * uv.x + cx, fy * uv.y + cy);
    vec2 extent = sqrt(reach * vec2(sxx, syy));
    if (det <= 0.0 || any(lessThan(pixel + extent, vec2(0.0))) || any(greaterThan(pixel - extent, u_size))) return;
    vec3 rgb = sh_color(i, normalize(center.xyz - u_origin));
    if (u_overlay && id > 0 && u_objects[id].a > 0.5) rgb = mix(rgb, u_objects[id].rgb, u_tint);
    out_screen = vec4(pixel, extent);
    out_conic = vec4(vec3(syy, -sxy, sxx) / det, 0.0);
    out_color = vec4(rgb, center.w);
}
